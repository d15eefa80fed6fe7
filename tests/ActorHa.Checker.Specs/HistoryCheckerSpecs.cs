using ActorHa.Checker;

namespace ActorHa.Checker.Specs;

public sealed class HistoryCheckerSpecs
{
    private static Operation Put(int p, string value, long start, long end, long version) => new(p, OpKind.Put, "k", value, start, end, OpResult.Ok, version);

    private static Operation PutInfo(int p, string value, long start, long end) => new(p, OpKind.Put, "k", value, start, end, OpResult.Info);

    private static Operation PutFail(int p, string value, long start, long end) => new(p, OpKind.Put, "k", value, start, end, OpResult.Fail);

    private static Operation Cas(int p, string value, long start, long end, long expected, long version) => new(p, OpKind.Cas, "k", value, start, end, OpResult.Ok, version, expected);

    private static Operation Get(int p, string? value, long start, long end, long? version) =>
        new(p, OpKind.Get, "k", value, start, end, OpResult.Ok, version, NotFound: value is null);

    private static Operation Delete(int p, long start, long end, long version) => new(p, OpKind.Delete, "k", null, start, end, OpResult.Ok, version);

    private static IReadOnlyList<ViolationKind> Kinds(params Operation[] history) => HistoryChecker.Check(history).Violations.Select(v => v.Kind).ToList();

    [Fact]
    public void A_sequential_history_passes()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            Get(2, "a", 11, 20, 1),
            Cas(1, "b", 21, 30, expected: 1, version: 2),
            Get(2, "b", 31, 40, 2)));
    }

    [Fact]
    public void Concurrent_operations_may_be_ordered_either_way()
    {
        // The read overlaps the write: it may see the old or the new version.
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            Put(1, "b", 20, 40, 2),
            Get(2, "a", 25, 35, 1),
            Get(3, "b", 30, 45, 2)));
    }

    [Fact]
    public void A_read_older_than_a_completed_write_is_a_stale_read()
    {
        Assert.Equal([ViolationKind.StaleRead], Kinds(
            Put(1, "a", 0, 10, 1),
            Put(1, "b", 20, 30, 2),
            Get(2, "a", 31, 40, 1)));
    }

    [Fact]
    public void A_read_of_nothing_after_an_acknowledged_write_is_a_lost_write()
    {
        Assert.Equal([ViolationKind.LostWrite], Kinds(
            Put(1, "a", 0, 10, 1),
            Get(2, null, 20, 30, null)));
    }

    [Fact]
    public void A_read_of_nothing_after_a_delete_is_fine()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            Delete(1, 11, 20, 2),
            Get(2, null, 21, 30, null)));
    }

    [Fact]
    public void Two_acknowledgements_of_one_version_are_a_duplicate_version()
    {
        Assert.Contains(ViolationKind.DuplicateVersion, Kinds(
            Put(1, "a", 0, 10, 1),
            Put(2, "b", 0, 10, 1)));
    }

    [Fact]
    public void A_read_of_a_value_nobody_wrote_is_a_phantom()
    {
        Assert.Contains(ViolationKind.PhantomValue, Kinds(
            Put(1, "a", 0, 10, 1),
            Get(2, "zzz", 20, 30, 2)));
    }

    [Fact]
    public void A_read_of_a_refused_write_is_a_failed_write_made_visible()
    {
        Assert.Contains(ViolationKind.FailedWriteVisible, Kinds(
            Put(1, "a", 0, 10, 1),
            PutFail(1, "refused", 11, 20),
            Get(2, "refused", 21, 30, 2)));
    }

    [Fact]
    public void An_indeterminate_write_may_be_seen_or_not()
    {
        // Seen:
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(1, "maybe", 11, 20),
            Get(2, "maybe", 21, 30, 2),
            Put(1, "c", 31, 40, 3)));

        // Not seen:
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(1, "maybe", 11, 20),
            Get(2, "a", 21, 30, 1)));
    }

    [Fact]
    public void A_read_reporting_another_value_for_an_acknowledged_version_is_wrong()
    {
        Assert.Contains(ViolationKind.WrongValueForVersion, Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "b", 0, 10),
            Get(3, "b", 20, 30, 1)));
    }

    [Fact]
    public void A_write_ordered_before_a_completed_one_is_reordered()
    {
        Assert.Contains(ViolationKind.Reordered, Kinds(
            Put(1, "a", 0, 10, 2),
            PutInfo(3, "x", 0, 5),
            Put(2, "b", 20, 30, 1)));
    }

    [Fact]
    public void A_compare_and_set_must_get_exactly_the_next_version()
    {
        Assert.Contains(ViolationKind.BadCasVersion, Kinds(
            Put(1, "a", 0, 10, 1),
            Cas(1, "b", 20, 30, expected: 1, version: 3),
            PutInfo(2, "x", 0, 40)));
    }

    [Fact]
    public void Versions_no_write_can_explain_are_flagged()
    {
        Assert.Contains(ViolationKind.UnexplainedVersion, Kinds(
            Put(1, "a", 0, 10, 1),
            Put(1, "b", 20, 30, 4)));
    }

    [Fact]
    public void Keys_are_checked_independently_and_counts_are_reported()
    {
        var history = new[]
        {
            new Operation(1, OpKind.Put, "x", "1", 0, 10, OpResult.Ok, 1),
            new Operation(1, OpKind.Put, "y", "1", 0, 10, OpResult.Ok, 1),
            new Operation(2, OpKind.Get, "x", "1", 20, 30, OpResult.Ok, 1),
            new Operation(2, OpKind.Get, "y", null, 20, 30, OpResult.Info),
            new Operation(3, OpKind.Cas, "y", "2", 20, 30, OpResult.Fail, ExpectedVersion: 5),
        };

        var result = HistoryChecker.Check(history);

        Assert.True(result.IsValid);
        Assert.Equal((5, 3, 1, 1), (result.Operations, result.Ok, result.Failed, result.Indeterminate));
    }

    [Fact]
    public void A_history_round_trips_through_JSON_lines()
    {
        var op = new Operation(3, OpKind.Cas, "k/ü", "v", 10, 20, OpResult.Ok, 4, 3);

        var line = HistoryFile.ToLine(op);

        Assert.Contains("\"op\":\"Cas\"", line);
        Assert.Equal(op, HistoryFile.FromLine(line));
    }
}
