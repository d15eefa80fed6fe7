using ActorHa.Cluster.Membership;

namespace ActorHa.Cluster.Specs.Membership;

public sealed class SplitBrainWatchdogSpecs
{
    [Fact]
    public void The_cluster_with_the_most_live_members_wins()
    {
        Assert.Equal("z", SplitBrainWatchdog.Winner([("1", "a"), ("2", "z"), ("3", "z")]));
    }

    [Fact]
    public void Between_clusters_of_equal_size_the_lowest_address_wins_so_that_every_node_picks_the_same()
    {
        Assert.Equal("akka.tcp://actorha@127.0.0.1:14251", SplitBrainWatchdog.Winner(
        [
            ("n3", "akka.tcp://actorha@127.0.0.1:14253"),
            ("n1", "akka.tcp://actorha@127.0.0.1:14251"),
            ("n2", "akka.tcp://actorha@127.0.0.1:14252"),
        ]));
    }

    [Fact]
    public void Nodes_that_have_not_reported_a_cluster_count_for_none()
    {
        Assert.Equal("a", SplitBrainWatchdog.Winner([("1", "a"), ("2", null), ("3", null)]));
        Assert.Null(SplitBrainWatchdog.Winner([("1", null)]));
    }
}
