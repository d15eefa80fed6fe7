using ActorHa.Cluster.Membership;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Membership;

/// <summary>
/// The first seed of a list whose other seeds never answer (a port nobody listens on), with a store that says
/// whether a cluster runs. Akka's seed-node-timeout is 1 s here: Akka alone would join itself after it.
/// </summary>
public sealed class SeedJoinSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ConfigurationFactory.ParseString("""
    akka.actor.provider = cluster
    akka.remote.dot-netty.tcp.hostname = 127.0.0.1
    akka.remote.dot-netty.tcp.port = 0
    akka.cluster.seed-node-timeout = 1s
    akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
    akka.coordinated-shutdown.exit-clr = off
    """), output: output)
{
    private static readonly (string, string?)[] Running = [("other#1/1", "akka.tcp://test@127.0.0.1:1")];

    [Fact]
    public void The_first_seed_is_listed_last_only_while_the_store_shows_a_live_member_of_a_cluster()
    {
        var self = Address.Parse("akka.tcp://actorha@127.0.0.1:4001");
        var other = Address.Parse("akka.tcp://actorha@127.0.0.1:4002");
        var third = Address.Parse("akka.tcp://actorha@127.0.0.1:4003");

        Assert.Equal([other, third, self], SeedJoin.Order([self, other, third], self, Running));
        Assert.Equal([self, other, third], SeedJoin.Order([self, other, third], self, []));
        Assert.Equal([self, other, third], SeedJoin.Order([self, other, third], self, [("starting#2/1", null)]));
        Assert.Equal([other, self, third], SeedJoin.Order([other, self, third], self, Running));
        Assert.Equal([self], SeedJoin.Order([self], self, Running));
        Assert.Equal([self], SeedJoin.Order([self, self], self, Running));
        Assert.Equal([other, other], SeedJoin.Order([other, other], self, Running));
    }

    [Fact]
    public void While_the_store_shows_a_running_cluster_the_first_seed_never_joins_itself()
    {
        // arrange: seeds this node first, then one that never answers; the store always shows a live member
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        var store = new ScriptedStore(() => Running);

        // act
        var seeds = new[] { cluster.SelfAddress, Silent() };
        EventFilter.Info(contains: "will not start a cluster of its own").ExpectOne(TimeSpan.FromSeconds(5), () => Sys.ActorOf(SeedJoin.Props(store, seeds, reportEvery: TimeSpan.FromSeconds(2))));

        // assert: at its first report, past twice Akka's seed-node-timeout, it is still a member of nothing, it kept looking, and it
        // says why it waits, naming the seed that does not answer
        EventFilter.Warning(contains: $"no seed ({seeds[1]}) has let this node in, while the store shows 1 live member(s) of a running cluster").ExpectOne(TimeSpan.FromSeconds(4), () => { });
        Assert.Equal(MemberStatus.Removed, cluster.SelfMember.Status);
        Assert.True(store.Reads >= 3, $"the store was read {store.Reads} times");
    }

    [Fact]
    public void A_first_seed_that_waits_for_a_running_cluster_starts_one_once_the_store_shows_none_left()
    {
        // arrange: the store shows a live member as the node starts, and none from the next look on
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        var store = new ScriptedStore(reads => reads == 1 ? Running : []);

        // act
        Sys.ActorOf(SeedJoin.Props(store, [cluster.SelfAddress, Silent()]));

        // assert
        AwaitCondition(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(10));
        Assert.True(store.Reads >= 2);
    }

    [Fact]
    public void With_no_cluster_in_the_store_the_first_seed_forms_one_after_Akkas_seed_node_timeout_as_before()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        var store = new ScriptedStore(() => []);

        Sys.ActorOf(SeedJoin.Props(store, [cluster.SelfAddress, Silent()]));

        AwaitCondition(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(10));
        Assert.Equal(1, store.Reads);
    }

    /// <summary>An address on a loopback port nobody listens on: a seed that never answers.</summary>
    private Address Silent()
    {
        var port = ActorHa.Launcher.Ports.FindFreeRange(1);
        return Address.Parse($"akka.tcp://{Sys.Name}@127.0.0.1:{port}");
    }

    private sealed class ScriptedStore(Func<int, IReadOnlyList<(string, string?)>> live) : LiveNodesStore
    {
        private int _reads;

        public ScriptedStore(Func<IReadOnlyList<(string, string?)>> live)
            : this(_ => live())
        {
        }

        public int Reads => Volatile.Read(ref _reads);

        public override IReadOnlyList<(string Node, string? Cluster)> LiveNodes() => live(Interlocked.Increment(ref _reads));
    }
}
