using System.Text;
using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Persistence.TestKit;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Partitions;

/// <summary>
/// The partition actor on Akka.Persistence.TestKit's journal, which can be told to reject writes: a real store
/// rejects only what it cannot serialize, which ActorHa's own events never are, so only a test journal shows it.
/// </summary>
public sealed class PartitionJournalFaultSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(Hocon, output)
{
    private const string Hocon = """
        akka.persistence.journal.plugin = "akka.persistence.journal.test"
        akka.persistence.journal.test.class = "Akka.Persistence.TestKit.TestJournal, Akka.Persistence.TestKit"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.test"
        akka.persistence.snapshot-store.test.class = "Akka.Persistence.TestKit.TestSnapshotStore, Akka.Persistence.TestKit"
        """;

    private static readonly PartitionId P = new(5);

    private ITestJournal Journal => TestJournal.FromRef(Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null));

    /// <summary>A partition (watched) that has recovered and written once.</summary>
    private IActorRef StartAfterOneWrite()
    {
        var partition = Sys.ActorOf(PartitionActor.Props(P, 1000, new AlwaysValid(), generation: 1));
        Watch(partition);
        partition.Tell(new Commands.Put("warm", Encoding.UTF8.GetBytes("up")));
        ExpectMsg<Replies.Written>(TimeSpan.FromSeconds(10));
        return partition;
    }

    [Fact]
    public async Task A_write_the_journal_rejects_is_answered_outcome_unknown_and_the_partition_stops_for_its_supervisor_to_restart_it()
    {
        // arrange
        var partition = StartAfterOneWrite();

        // act: the journal now rejects every write
        await Journal.OnWrite.Reject();
        partition.Tell(new Commands.Put("k", Encoding.UTF8.GetBytes("two")));

        // assert: an answer (not silence), that retrying is safe, and no incarnation left wedged behind the write
        Assert.IsType<Replies.Unavailable>(ExpectMsg<IPartitionReply>(TimeSpan.FromSeconds(5)));
        ExpectTerminated(partition, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_partition_told_to_stop_after_a_slow_write_and_its_retried_copy_stops_once_both_are_answered()
    {
        // arrange: a journal whose commits are slow
        var partition = StartAfterOneWrite();
        await Journal.OnWrite.PassWithDelay(TimeSpan.FromSeconds(1));

        // act: a write, the client's retry of it with the same request id while the first is in flight, then the hand-off
        var put = new Commands.Put("k", Encoding.UTF8.GetBytes("v"), RequestId: Guid.NewGuid());
        partition.Tell(put);
        partition.Tell(put);
        partition.Tell(PartitionControl.Stop.Instance);

        // assert: both copies get the one outcome, and the hand-off ends (the retry wrote nothing, so nothing else ends it)
        ExpectMsg(new Replies.Written("k", 1, Created: true), TimeSpan.FromSeconds(5));
        ExpectMsg(new Replies.Written("k", 1, Created: true), TimeSpan.FromSeconds(5));
        ExpectTerminated(partition, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Writes_queued_behind_a_full_batch_of_copies_answered_from_memory_are_still_written()
    {
        // arrange: a slow journal, so that everything below queues while the first write is in flight
        var partition = StartAfterOneWrite();
        await Journal.OnWrite.PassWithDelay(TimeSpan.FromMilliseconds(500));

        // act: one write, a whole batch of copies of it (a client's retries after a stall), then a new write
        var put = new Commands.Put("k", Encoding.UTF8.GetBytes("v"), RequestId: Guid.NewGuid());
        partition.Tell(put);
        for (var i = 0; i < PartitionActor.MaxBatchWrites; i++)
        {
            partition.Tell(put);
        }

        partition.Tell(new Commands.Put("other", Encoding.UTF8.GetBytes("new"), RequestId: Guid.NewGuid()));

        // assert: the write and its copies get the one outcome, and the new write behind them is written too
        Assert.All(ReceiveN(1 + PartitionActor.MaxBatchWrites, TimeSpan.FromSeconds(10)), reply => Assert.Equal(new Replies.Written("k", 1, Created: true), reply));
        Assert.Equal(new Replies.Written("other", 1, Created: true), ExpectMsg<Replies.Written>(TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData(3, 70, 3)]
    [InlineData(2500, 70, PartitionActor.MaxBatchWrites)]
    [InlineData(10, 1024 * 1024, 4)]
    [InlineData(3, 5 * 1024 * 1024, 1)]
    [InlineData(0, 70, 0)]
    public void A_journal_write_takes_the_queued_writes_up_to_its_bounds_and_always_at_least_one(int queued, int valueBytes, int expected)
    {
        var writes = Enumerable.Range(0, queued).Select(i => (IWriteCommand)new Commands.Put($"k{i}", new byte[valueBytes]));

        Assert.Equal(expected, PartitionActor.NextBatchLength(writes));
    }

    [Fact]
    public void Writes_queued_beyond_one_journal_write_are_written_by_the_next_ones_and_answered_in_order()
    {
        var partition = Sys.ActorOf(PartitionActor.Props(P, 1000, new AlwaysValid(), generation: 1));
        for (var i = 0; i < PartitionActor.MaxBatchWrites + 500; i++)
        {
            partition.Tell(new Commands.Put("hot", [1]));
        }

        var versions = ReceiveN(PartitionActor.MaxBatchWrites + 500, TimeSpan.FromSeconds(20)).Cast<Replies.Written>().Select(w => w.Version);
        Assert.Equal(Enumerable.Range(1, PartitionActor.MaxBatchWrites + 500).Select(i => (long)i), versions);
    }

    private sealed class AlwaysValid : ILeaseGuard
    {
        public long Generation => 1;

        public bool IsValid => true;
    }
}
