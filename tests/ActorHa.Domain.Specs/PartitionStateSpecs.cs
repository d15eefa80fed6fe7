using ActorHa.Domain;

namespace ActorHa.Domain.Specs;

public sealed class PartitionStateSpecs
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000);

    private static (PartitionState State, IPartitionReply Reply) Run(PartitionState state, IWriteCommand command, DateTimeOffset? at = null)
    {
        var decision = state.Decide(command, at ?? T0);
        return (decision.Event is null ? state : state.Apply(decision.Event), decision.Reply);
    }

    private static byte[] V(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    [Fact]
    public void The_first_put_creates_the_key_at_version_1()
    {
        var (state, reply) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));

        Assert.Equal(new Replies.Written("k", 1, Created: true), reply);
        var found = Assert.IsType<Replies.Found>(state.Answer(new Queries.Get("k")));
        Assert.Equal("one", System.Text.Encoding.UTF8.GetString(found.Value));
        Assert.Equal(1, found.Version);
        Assert.Equal(T0, found.CreatedAt);
    }

    [Fact]
    public void Each_put_increments_the_version_and_keeps_the_creation_time()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var (s2, reply) = Run(s1, new Commands.Put("k", V("two")), T0.AddSeconds(5));

        Assert.Equal(new Replies.Written("k", 2, Created: false), reply);
        var found = Assert.IsType<Replies.Found>(s2.Answer(new Queries.Get("k")));
        Assert.Equal(T0, found.CreatedAt);
        Assert.Equal(T0.AddSeconds(5), found.UpdatedAt);
    }

    [Fact]
    public void Decide_never_changes_the_state()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));

        s1.Decide(new Commands.Put("k", V("two")), T0);
        s1.Decide(new Commands.Delete("k"), T0);

        Assert.Equal(1, Assert.IsType<Replies.Found>(s1.Answer(new Queries.Get("k"))).Version);
    }

    [Fact]
    public void Compare_and_set_succeeds_only_at_the_expected_version()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));

        var (s2, ok) = Run(s1, new Commands.Put("k", V("two"), ExpectedVersion: 1));
        var (_, stale) = Run(s2, new Commands.Put("k", V("three"), ExpectedVersion: 1));

        Assert.Equal(new Replies.Written("k", 2, Created: false), ok);
        Assert.Equal(new Replies.VersionMismatch("k", ExpectedVersion: 1, CurrentVersion: 2), stale);
    }

    [Fact]
    public void Expected_version_0_creates_only_when_the_key_is_absent()
    {
        var (s1, created) = Run(PartitionState.Empty, new Commands.Put("k", V("one"), ExpectedVersion: 0));
        var (_, refused) = Run(s1, new Commands.Put("k", V("two"), ExpectedVersion: 0));

        Assert.IsType<Replies.Written>(created);
        Assert.Equal(new Replies.VersionMismatch("k", 0, 1), refused);
    }

    [Fact]
    public void Compare_and_set_on_a_missing_key_reports_current_version_0()
    {
        var (_, reply) = Run(PartitionState.Empty, new Commands.Put("k", V("x"), ExpectedVersion: 3));

        Assert.Equal(new Replies.VersionMismatch("k", 3, 0), reply);
    }

    [Fact]
    public void A_delete_leaves_a_tombstone_so_a_recreated_key_never_reuses_a_version()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var (s2, deleted) = Run(s1, new Commands.Delete("k"));
        var (s3, recreated) = Run(s2, new Commands.Put("k", V("again"), ExpectedVersion: 0));

        Assert.Equal(new Replies.Deleted("k", 2), deleted);
        Assert.IsType<Replies.NotFound>(s2.Answer(new Queries.Get("k")));
        Assert.Equal(new Replies.Written("k", 3, Created: true), recreated);
        Assert.Equal(3, Assert.IsType<Replies.Found>(s3.Answer(new Queries.Get("k"))).Version);
    }

    [Fact]
    public void Deleting_a_missing_or_deleted_key_is_not_found_and_writes_nothing()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var (s2, _) = Run(s1, new Commands.Delete("k"));

        var missing = PartitionState.Empty.Decide(new Commands.Delete("nope"), T0);
        var again = s2.Decide(new Commands.Delete("k"), T0);

        Assert.Null(missing.Event);
        Assert.IsType<Replies.NotFound>(missing.Reply);
        Assert.Null(again.Event);
        Assert.IsType<Replies.NotFound>(again.Reply);
    }

    [Fact]
    public void A_conditional_delete_succeeds_only_at_the_expected_version()
    {
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));

        var (_, stale) = Run(s1, new Commands.Delete("k", ExpectedVersion: 7));
        var (_, ok) = Run(s1, new Commands.Delete("k", ExpectedVersion: 1));
        var (_, missing) = Run(PartitionState.Empty, new Commands.Delete("k", ExpectedVersion: 1));

        Assert.Equal(new Replies.VersionMismatch("k", 7, 1), stale);
        Assert.Equal(new Replies.Deleted("k", 2), ok);
        Assert.Equal(new Replies.VersionMismatch("k", 1, 0), missing);
    }

    [Fact]
    public void Listing_returns_live_keys_with_the_prefix_in_ordinal_order_after_the_cursor()
    {
        var state = PartitionState.Empty;
        foreach (var key in new[] { "b/2", "a/1", "b/1", "b/3", "c/1", "b" })
        {
            state = Run(state, new Commands.Put(key, V(key))).State;
        }

        state = Run(state, new Commands.Delete("b/2")).State;
        var p = new PartitionId(0);

        var first = state.Answer(new Queries.ListKeys(p, "b/", null, 10));
        var afterCursor = state.Answer(new Queries.ListKeys(p, "b/", "b/1", 10));
        var limited = state.Answer(new Queries.ListKeys(p, "", null, 2));

        Assert.Equal(["b/1", "b/3"], first.Keys.Select(k => k.Key));
        Assert.Equal(["b/3"], afterCursor.Keys.Select(k => k.Key));
        Assert.Equal(["a/1", "b"], limited.Keys.Select(k => k.Key));
    }

    [Fact]
    public void A_refused_request_retried_after_the_key_reached_its_expected_version_is_refused_again_not_applied()
    {
        // arrange: a compare-and-set for version 2 refused at version 1, then another client moves the key to 2
        var id = Guid.NewGuid();
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var cas = new Commands.Put("k", V("mine"), ExpectedVersion: 2, RequestId: id);
        var refusal = s1.Decide(cas, T0);
        var s2 = s1.Apply(refusal.Event!);
        var (s3, _) = Run(s2, new Commands.Put("k", V("two")));

        // act: a second copy of the refused request (a retry through another node, or the original, late)
        var copy = s3.Decide(cas, T0);

        // assert: the refusal changed no key, was remembered, and the copy gets it again
        Assert.Equal(new Replies.VersionMismatch("k", 2, 1), refusal.Reply);
        Assert.Equal(1, Assert.IsType<Replies.Found>(s2.Answer(new Queries.Get("k"))).Version);
        Assert.Null(copy.Event);
        Assert.Equal(refusal.Reply, copy.Reply);
        Assert.Equal("two", System.Text.Encoding.UTF8.GetString(Assert.IsType<Replies.Found>(s3.Answer(new Queries.Get("k"))).Value));
    }

    [Fact]
    public void A_request_id_first_refused_and_then_reused_for_another_value_is_a_conflict_from_the_events_and_from_a_snapshot()
    {
        // arrange: a compare-and-set refused (the key is at 1, not 2); the key then reaches version 2
        var id = Guid.NewGuid();
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var refusal = s1.Decide(new Commands.Put("k", V("mine"), ExpectedVersion: 2, RequestId: id), T0);
        var (fromEvents, _) = Run(s1.Apply(refusal.Event!), new Commands.Put("k", V("two")));
        var fromSnapshot = PartitionState.FromEntries(fromEvents.Entries, fromEvents.Recent.Remembered);

        // act / assert: the same id with another value is not answered with the first request's 412
        Assert.All([fromEvents, fromSnapshot], state =>
        {
            Assert.IsType<Replies.IdempotencyConflict>(state.Decide(new Commands.Put("k", V("other"), ExpectedVersion: 2, RequestId: id), T0).Reply);
            Assert.Equal(refusal.Reply, state.Decide(new Commands.Put("k", V("mine"), ExpectedVersion: 2, RequestId: id), T0).Reply);
        });
    }

    [Fact]
    public void A_refusal_recorded_before_refusals_kept_a_fingerprint_is_matched_on_kind_key_and_precondition_only()
    {
        var id = Guid.NewGuid();
        var state = PartitionState.Empty.Apply(new Events.WriteRefused("k", 1, 2, T0, id, Fingerprint: 0));

        Assert.Equal(new Replies.VersionMismatch("k", 2, 1), state.Decide(new Commands.Put("k", V("other"), ExpectedVersion: 2, RequestId: id), T0).Reply);
        Assert.IsType<Replies.IdempotencyConflict>(state.Decide(new Commands.Put("k", V("other"), ExpectedVersion: 3, RequestId: id), T0).Reply);
    }

    [Fact]
    public void A_delete_of_an_absent_key_with_a_request_id_is_remembered_so_a_later_copy_does_not_delete_a_newer_value()
    {
        var id = Guid.NewGuid();
        var delete = new Commands.Delete("k", RequestId: id);
        var refusal = PartitionState.Empty.Decide(delete, T0);
        var (s1, _) = Run(PartitionState.Empty.Apply(refusal.Event!), new Commands.Put("k", V("created later")));

        var copy = s1.Decide(delete, T0);

        Assert.Equal(new Replies.NotFound("k"), refusal.Reply);
        Assert.Null(copy.Event);
        Assert.Equal(new Replies.NotFound("k"), copy.Reply);
    }

    [Fact]
    public void A_retried_request_is_answered_with_its_first_outcome_and_applied_once()
    {
        var id = Guid.NewGuid();
        var (s1, first) = Run(PartitionState.Empty, new Commands.Put("k", V("one"), RequestId: id));
        var (s2, _) = Run(s1, new Commands.Put("k", V("two")));

        var retry = s2.Decide(new Commands.Put("k", V("one"), RequestId: id), T0);

        Assert.Null(retry.Event);
        Assert.Equal(first, retry.Reply);
        Assert.Equal(new Replies.Written("k", 1, Created: true), retry.Reply);
        Assert.Equal(2, Assert.IsType<Replies.Found>(s2.Answer(new Queries.Get("k"))).Version);
    }

    [Theory]
    [InlineData("put another value")]
    [InlineData("put another key")]
    [InlineData("delete the key")]
    public void A_request_id_reused_for_a_different_request_is_refused_as_a_conflict_and_changes_nothing(string reuse)
    {
        // arrange
        var id = Guid.NewGuid();
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one"), RequestId: id));
        IWriteCommand command = reuse switch
        {
            "put another value" => new Commands.Put("k", V("two"), RequestId: id),
            "put another key" => new Commands.Put("other", V("one"), RequestId: id),
            _ => new Commands.Delete("k", RequestId: id),
        };

        // act
        var decision = s1.Decide(command, T0);

        // assert
        Assert.Null(decision.Event);
        Assert.IsType<Replies.IdempotencyConflict>(decision.Reply);
        Assert.Equal(V("one"), Assert.IsType<Replies.Found>(s1.Answer(new Queries.Get("k"))).Value);
    }

    [Fact]
    public void A_request_id_remembered_from_events_or_a_snapshot_still_recognises_a_different_value()
    {
        // arrange: the state rebuilt as recovery does, from the events, and from the remembered requests a snapshot holds
        var id = Guid.NewGuid();
        var written = new Events.ValueWritten("k", V("one"), 1, T0, id);
        var fromEvents = PartitionState.Empty.Apply(written);
        var fromSnapshot = PartitionState.FromEntries(fromEvents.Entries, fromEvents.Recent.Remembered);

        // act / assert
        Assert.All([fromEvents, fromSnapshot], state =>
        {
            Assert.IsType<Replies.IdempotencyConflict>(state.Decide(new Commands.Put("k", V("two"), RequestId: id), T0).Reply);
            Assert.Equal(new Replies.Written("k", 1, Created: true), state.Decide(new Commands.Put("k", V("one"), RequestId: id), T0).Reply);
        });
    }

    [Fact]
    public void A_request_remembered_without_a_fingerprint_is_matched_on_kind_and_key_only()
    {
        // A snapshot written before fingerprints (v3) remembers only the reply: a different value cannot be told apart.
        var id = Guid.NewGuid();
        var state = PartitionState.FromEntries([], [(id, (IPartitionReply)new Replies.Written("k", 1, Created: true))]);

        Assert.Equal(new Replies.Written("k", 1, Created: true), state.Decide(new Commands.Put("k", V("two"), RequestId: id), T0).Reply);
        Assert.IsType<Replies.IdempotencyConflict>(state.Decide(new Commands.Put("other", V("two"), RequestId: id), T0).Reply);
        Assert.IsType<Replies.IdempotencyConflict>(state.Decide(new Commands.Delete("k", RequestId: id), T0).Reply);
    }

    [Fact]
    public void A_retried_compare_and_set_is_not_refused_by_its_own_success()
    {
        var id = Guid.NewGuid();
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var (s2, cas) = Run(s1, new Commands.Put("k", V("two"), ExpectedVersion: 1, RequestId: id));

        var retry = s2.Decide(new Commands.Put("k", V("two"), ExpectedVersion: 1, RequestId: id), T0);

        Assert.Equal(new Replies.Written("k", 2, Created: false), cas);
        Assert.Equal(cas, retry.Reply);
    }

    [Fact]
    public void A_retried_delete_is_answered_with_the_tombstone_version()
    {
        var id = Guid.NewGuid();
        var (s1, _) = Run(PartitionState.Empty, new Commands.Put("k", V("one")));
        var (s2, deleted) = Run(s1, new Commands.Delete("k", RequestId: id));

        Assert.Equal(deleted, s2.Decide(new Commands.Delete("k", RequestId: id), T0).Reply);
    }

    [Fact]
    public void Remembered_requests_are_bounded_oldest_first()
    {
        var recent = RecentRequests.Empty;
        var ids = Enumerable.Range(0, 5).Select(_ => Guid.NewGuid()).ToList();

        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            recent = recent.Add(id, new Replies.Written($"k{i}", 1, true), capacity: 3);
        }

        Assert.Equal(3, recent.Count);
        Assert.Null(recent.Find(ids[0]));
        Assert.Null(recent.Find(ids[1]));
        Assert.Equal(ids.Skip(2), recent.InOrder.Select(r => r.RequestId));
    }

    [Fact]
    public void Remembered_requests_rebuilt_from_a_snapshot_keep_their_order_and_evict_the_oldest_next()
    {
        var ids = Enumerable.Range(0, 4).Select(_ => Guid.NewGuid()).ToList();
        var items = ids.Select((id, i) => (id, (IPartitionReply)new Replies.Written($"k{i}", i + 1, true)))
            .Append((ids[1], new Replies.Written("duplicate", 99, false)))
            .ToList();

        var recent = RecentRequests.From(items);

        Assert.Equal(4, recent.Count);
        Assert.Equal(ids, recent.InOrder.Select(r => r.RequestId));
        Assert.Equal(new Replies.Written("k1", 2, true), recent.Find(ids[1]));

        var next = recent.Add(Guid.NewGuid(), new Replies.Written("k4", 5, true), capacity: 4);
        Assert.Null(next.Find(ids[0]));
        Assert.NotNull(next.Find(ids[1]));
        Assert.Equal(ids.Skip(1), next.InOrder.Take(3).Select(r => r.RequestId));
    }
}
