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

    [Fact]
    public async Task A_write_the_journal_rejects_is_answered_outcome_unknown_and_the_partition_stops_for_its_supervisor_to_restart_it()
    {
        // arrange: a partition that has written once
        var partition = Sys.ActorOf(PartitionActor.Props(P, 1000, new AlwaysValid(), generation: 1));
        Watch(partition);
        partition.Tell(new Commands.Put("k", Encoding.UTF8.GetBytes("one")));
        ExpectMsg<Replies.Written>(TimeSpan.FromSeconds(10));
        var journal = TestJournal.FromRef(Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null));

        // act: the journal now rejects every write
        await journal.OnWrite.Reject();
        partition.Tell(new Commands.Put("k", Encoding.UTF8.GetBytes("two")));

        // assert: an answer (not silence), that retrying is safe, and no incarnation left wedged behind the write
        Assert.IsType<Replies.Unavailable>(ExpectMsg<IPartitionReply>(TimeSpan.FromSeconds(5)));
        ExpectTerminated(partition, TimeSpan.FromSeconds(5));
    }

    private sealed class AlwaysValid : ILeaseGuard
    {
        public long Generation => 1;

        public bool IsValid => true;
    }
}
