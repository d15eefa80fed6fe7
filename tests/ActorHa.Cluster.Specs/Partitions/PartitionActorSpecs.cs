using System.Text;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Partitions;

public sealed class PartitionActorSpecs(ITestOutputHelper output) : PersistenceSpecBase(output)
{
    private static readonly PartitionId P = new(7);

    private static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    private IActorRef StartPartition(int snapshotEvery = 1000) => Sys.ActorOf(PartitionActor.Props(P, snapshotEvery));

    private void StopAndWait(IActorRef actor)
    {
        Watch(actor);
        actor.Tell(PartitionControl.Stop.Instance);
        ExpectTerminated(actor);
        Unwatch(actor);
    }

    [Fact]
    public void A_write_is_acknowledged_with_its_version_and_read_back()
    {
        var partition = StartPartition();

        partition.Tell(new Commands.Put("k", V("one")));
        ExpectMsg(new Replies.Written("k", 1, Created: true));
        partition.Tell(new Queries.Get("k"));

        var found = ExpectMsg<Replies.Found>();
        Assert.Equal(("k", 1L, "one"), (found.Key, found.Version, Encoding.UTF8.GetString(found.Value)));
    }

    [Fact]
    public void Acknowledged_writes_survive_a_restart_of_the_partition()
    {
        // arrange
        var partition = StartPartition();
        for (var i = 1; i <= 20; i++)
        {
            partition.Tell(new Commands.Put($"k{i % 5}", V($"v{i}")));
        }

        partition.Tell(new Commands.Delete("k0"));
        ReceiveN(21);
        StopAndWait(partition);

        // act: a new incarnation recovers from the journal
        var recovered = StartPartition();
        recovered.Tell(new Queries.ListKeys(P, "", null, 100));
        var page = ExpectMsg<Replies.KeyPage>();
        recovered.Tell(new Queries.Get("k4"));

        // assert
        Assert.Equal(["k1", "k2", "k3", "k4"], page.Keys.Select(k => k.Key));
        Assert.All(page.Keys, k => Assert.Equal(4, k.Version));
        Assert.Equal("v19", Encoding.UTF8.GetString(ExpectMsg<Replies.Found>().Value));
        recovered.Tell(new Commands.Put("k0", V("again")));
        ExpectMsg(new Replies.Written("k0", 6, Created: true));
    }

    [Fact]
    public void Writes_that_arrive_together_are_committed_as_a_batch_and_acknowledged_in_order()
    {
        var partition = StartPartition();

        for (var i = 0; i < 200; i++)
        {
            partition.Tell(new Commands.Put("hot", V($"v{i}")));
        }

        var versions = ReceiveN(200, TimeSpan.FromSeconds(20)).Cast<Replies.Written>().Select(w => w.Version).ToList();
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), versions);
        // Fewer transactions than writes would be the proof of batching, but SQLite does not expose
        // them; the journal must at least hold every event exactly once.
        Assert.Equal(200, CountRows($"SELECT COUNT(*) FROM event_journal WHERE persistence_id = '{PartitionActor.PersistenceIdFor(P)}'"));
    }

    [Fact]
    public void A_rejected_compare_and_set_inside_a_batch_sees_the_earlier_write_of_that_batch()
    {
        var partition = StartPartition();

        partition.Tell(new Commands.Put("k", V("a"), ExpectedVersion: 0));
        partition.Tell(new Commands.Put("k", V("b"), ExpectedVersion: 0));
        partition.Tell(new Commands.Put("k", V("c"), ExpectedVersion: 1));

        ExpectMsg(new Replies.Written("k", 1, Created: true));
        ExpectMsg(new Replies.VersionMismatch("k", 0, 1));
        ExpectMsg(new Replies.Written("k", 2, Created: false));
    }

    [Fact]
    public void A_snapshot_is_saved_every_N_events_and_recovery_uses_it_plus_later_events()
    {
        // arrange: snapshot every 10 events, 25 events written
        var partition = StartPartition(snapshotEvery: 10);
        for (var i = 0; i < 25; i++)
        {
            partition.Tell(new Commands.Put($"key{i:D2}", V($"value{i}")));
            ExpectMsg<Replies.Written>();
        }

        AwaitCondition(() => CountRows("SELECT COUNT(*) FROM snapshot") == 1, TimeSpan.FromSeconds(10));
        StopAndWait(partition);
        var snapshotSeqNr = CountRows("SELECT MAX(sequence_nr) FROM snapshot");

        // Remove the events the snapshot covers: recovery can only succeed through the snapshot.
        using (var connection = new SqliteConnection($"Data Source={DatabaseFile}"))
        {
            connection.Open();
            using var delete = connection.CreateCommand();
            delete.CommandText = $"DELETE FROM event_journal WHERE sequence_nr <= {snapshotSeqNr}";
            delete.ExecuteNonQuery();
        }

        // act
        var recovered = StartPartition(snapshotEvery: 10);
        recovered.Tell(new Queries.ListKeys(P, "key", null, 100));

        // assert
        Assert.Equal(20, snapshotSeqNr);
        Assert.Equal(25, ExpectMsg<Replies.KeyPage>().Keys.Count);
        recovered.Tell(new Queries.Get("key24"));
        Assert.Equal("value24", Encoding.UTF8.GetString(ExpectMsg<Replies.Found>().Value));
    }

    [Fact]
    public void An_injected_failure_restarts_the_partition_under_its_supervisor_and_keeps_its_state()
    {
        // arrange
        var supervisor = Sys.ActorOf(PartitionSupervisor.Props(P, PartitionActor.Props(P, 1000)));
        supervisor.Tell(new Commands.Put("k", V("kept")));
        ExpectMsg<Replies.Written>();
        var firstChild = ChildOf(supervisor);
        Watch(firstChild);

        // act
        supervisor.Tell(new PartitionControl.InjectFailure("spec"));
        ExpectTerminated(firstChild);

        // assert: a new incarnation recovers the write; meanwhile callers get answers, never silence
        AwaitAssert(() =>
        {
            supervisor.Tell(new Queries.Get("k"));
            var reply = ExpectMsg<IPartitionReply>(TimeSpan.FromSeconds(1));
            var found = Assert.IsType<Replies.Found>(reply);
            Assert.Equal("kept", Encoding.UTF8.GetString(found.Value));
        }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(50));
        Assert.NotEqual(firstChild, ChildOf(supervisor));
    }

    [Fact]
    public void While_a_partition_cannot_start_its_callers_get_a_retryable_answer_at_once()
    {
        // A child that fails in its constructor keeps the supervisor in backoff.
        var supervisor = Sys.ActorOf(PartitionSupervisor.Props(P, Props.Create(() => new AlwaysFails())));

        AwaitAssert(() =>
        {
            supervisor.Tell(new Queries.Get("k"));
            var unavailable = ExpectMsg<Replies.Unavailable>(TimeSpan.FromMilliseconds(500));
            Assert.Contains("restarting", unavailable.Reason);
            Assert.True(unavailable.RetryAfter > TimeSpan.Zero);
        }, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void A_write_rejected_by_the_journal_stops_the_partition_and_it_recovers_once_the_journal_is_back()
    {
        // arrange: another process holds SQLite's write lock longer than the journal's busy timeout
        var supervisor = Sys.ActorOf(PartitionSupervisor.Props(P, PartitionActor.Props(P, 1000)));
        supervisor.Tell(new Commands.Put("k", V("before")));
        ExpectMsg(new Replies.Written("k", 1, Created: true));

        using (var blocker = new SqliteConnection($"Data Source={DatabaseFile};Default Timeout=1"))
        {
            blocker.Open();
            using var begin = blocker.CreateCommand();
            begin.CommandText = "BEGIN EXCLUSIVE;";
            begin.ExecuteNonQuery();

            // act: this write cannot commit; the caller must hear back (unknown outcome), not time out silently
            supervisor.Tell(new Commands.Put("k", V("during")));
            var reply = ExpectMsg<IPartitionReply>(TimeSpan.FromSeconds(45));
            Assert.IsType<Replies.Unavailable>(reply);

            using var rollback = blocker.CreateCommand();
            rollback.CommandText = "ROLLBACK;";
            rollback.ExecuteNonQuery();
        }

        // assert: the restarted partition has exactly the acknowledged state and accepts writes again
        AwaitAssert(() =>
        {
            supervisor.Tell(new Commands.Put("k", V("after")));
            Assert.Equal(new Replies.Written("k", 2, Created: false), ExpectMsg<IPartitionReply>(TimeSpan.FromSeconds(5)));
        }, TimeSpan.FromSeconds(40), TimeSpan.FromMilliseconds(200));
    }

    private IActorRef ChildOf(IActorRef supervisor)
    {
        IActorRef? child = null;
        AwaitAssert(() =>
        {
            Sys.ActorSelection(supervisor.Path / "p").Tell(new Identify(1), TestActor);
            child = ExpectMsg<ActorIdentity>().Subject;
            Assert.NotNull(child);
        }, TimeSpan.FromSeconds(5));
        return child!;
    }

    private sealed class AlwaysFails : ReceiveActor
    {
        public AlwaysFails() => throw new InvalidOperationException("cannot start");
    }
}
