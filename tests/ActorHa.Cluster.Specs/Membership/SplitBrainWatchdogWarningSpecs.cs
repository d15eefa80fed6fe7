using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Membership;
using Akka.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Membership;

/// <summary>The watchdog's warning, on a one-member cluster with a store that shows another cluster's members.</summary>
public sealed class SplitBrainWatchdogWarningSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString("""
    akka.actor.provider = cluster
    akka.remote.dot-netty.tcp.hostname = 127.0.0.1
    akka.remote.dot-netty.tcp.port = 0
    akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
    akka.coordinated-shutdown.exit-clr = off
    """), output: output)
{
    [Fact]
    public void A_disagreement_of_a_second_or_two_is_no_warning_but_one_that_lasts_is()
    {
        // arrange: a one-member cluster whose store shows two live members of another cluster, as it does for about a
        // second after the oldest member is killed (its row, and a survivor's not yet updated)
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        AwaitCondition(() => cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up, TimeSpan.FromSeconds(10));
        var store = new OutnumberedStore();
        using var lease = new NodeLease(store, new LeaseSettings(), NullLogger<NodeLease>.Instance);
        lease.Start("me");
        AwaitCondition(() => lease.IsValid, TimeSpan.FromSeconds(5));

        // act
        var watchdog = Sys.ActorOf(SplitBrainWatchdog.Props(store, lease));

        // assert: checked every second, but quiet while the disagreement is shorter than WarnAfter (3 s), then warned
        EventFilter.Warning(contains: "another cluster shares this store").Expect(0, TimeSpan.FromSeconds(2.8), () => { });
        Assert.True(store.Reports >= 2, $"the watchdog checked {store.Reports} times");
        EventFilter.Warning(contains: "another cluster shares this store").Expect(1, TimeSpan.FromSeconds(3), () => { });
        Sys.Stop(watchdog);
    }

    private sealed class OutnumberedStore : LiveNodesStore
    {
        private string? _mine;
        private int _reports;

        public int Reports => Volatile.Read(ref _reports);

        public override void ReportCluster(string node, string cluster)
        {
            Volatile.Write(ref _mine, cluster);
            Interlocked.Increment(ref _reports);
        }

        public override IReadOnlyList<(string Node, string? Cluster)> LiveNodes() =>
            [("me", Volatile.Read(ref _mine)), ("dead-oldest", "akka.tcp://actorha@10.0.0.1:4051"), ("survivor", "akka.tcp://actorha@10.0.0.1:4051")];
    }
}
