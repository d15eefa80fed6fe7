using System.Text;
using ActorHa.Client;
using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>Two clusters on one store, as a split brain leaves them: the split-brain watchdog ends it.</summary>
public sealed class SplitBrainSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Of_two_clusters_sharing_one_store_the_smaller_shuts_down_and_the_larger_then_serves_every_partition()
    {
        var root = Path.Combine(Path.GetTempPath(), "actorha-split-brain-spec", Guid.NewGuid().ToString("N"));
        await using var small = new LocalCluster(LocalClusterOptions.OnFreePorts(1, Path.Combine(root, "small")) with { NodeProgram = SpecCluster.NodeProgram });
        // The larger cluster's nodes name only its first node as their seed, so that it forms on its own beside the
        // running one: a first seed among other seeds waits to join a cluster the store shows running (SeedJoin).
        var largePorts = LocalClusterOptions.OnFreePorts(2, Path.Combine(root, "large"));
        await using var large = new LocalCluster(largePorts with
        {
            NodeProgram = SpecCluster.NodeProgram,
            Settings = new Dictionary<string, string> { ["DataDir"] = small.DataDir, ["Seeds:1"] = $"{largePorts.Host}:{largePorts.BaseAkkaPort}" },
        });
        try
        {
            // arrange: a one-node cluster that holds every partition, then a two-node cluster of its own on the same store
            small.StartAll();
            await small.WaitUntilReadyAsync(ReadyTimeout);
            var before = await small[1].Client.PutAsync("split-brain/before", Encoding.UTF8.GetBytes("small"));
            Assert.True(before.IsSuccess, $"{(int)before.Status} {before.Problem?.Detail}");
            large.StartAll();
            await large.WaitUntilReadyAsync(ReadyTimeout);

            // act: the watchdogs compare the two clusters in the store
            var deadline = DateTime.UtcNow + SplitBrainWatchdogPatience + TimeSpan.FromSeconds(30);
            while (small[1].IsRunning && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }

            // assert: the smaller cluster's node shut down as downed (exit code 4) and said why
            Assert.False(small[1].IsRunning, "the one-node cluster is still running beside the two-node one");
            Assert.Equal(4, small[1].Process!.ExitCode);
            Assert.Contains("Split-brain watchdog", await File.ReadAllTextAsync(small[1].LogFile));

            // and the larger cluster serves every partition, with what the smaller one had acknowledged
            for (var i = 0; i < 64; i++)
            {
                var node = large.Nodes[i % 2];
                var write = await ActorHaClient.RetryingWriteAsync(c => node.Client.PutAsync($"split-brain/{i}", Encoding.UTF8.GetBytes("large"), ct: c), TimeSpan.FromSeconds(20));
                Assert.True(write.IsSuccess, $"split-brain/{i}: {(int)write.Status} {write.Problem?.Detail}");
            }

            var read = await large[1].Client.GetAsync("split-brain/before");
            Assert.True(read.IsSuccess, $"{(int)read.Status} {read.Problem?.Detail}");
            Assert.Equal("small", Encoding.UTF8.GetString(read.Value!.Value));
        }
        catch
        {
            output.WriteLine(LocalCluster.Tail(small[1].LogFile, 40));
            output.WriteLine(LocalCluster.Tail(large[1].LogFile, 40));
            throw;
        }
    }

    [Fact]
    public async Task A_node_stuck_joining_a_cluster_of_its_own_while_another_cluster_serves_from_the_store_shuts_down_to_join_it()
    {
        var root = Path.Combine(Path.GetTempPath(), "actorha-split-brain-spec", Guid.NewGuid().ToString("N"));
        await using var serving = new LocalCluster(LocalClusterOptions.OnFreePorts(2, Path.Combine(root, "serving")) with { NodeProgram = SpecCluster.NodeProgram });
        // As a node restarted while the rest of its cluster was frozen: no seed answered, so it joined itself, and it
        // waits for members that will never come to it.
        await using var lone = new LocalCluster(LocalClusterOptions.OnFreePorts(1, Path.Combine(root, "lone")) with
        {
            NodeProgram = SpecCluster.NodeProgram,
            Settings = new Dictionary<string, string> { ["DataDir"] = serving.DataDir, ["MinMembers"] = "3" },
        });
        try
        {
            // arrange: a two-node cluster serving from the store, then the lone node on the same store
            serving.StartAll();
            await serving.WaitUntilReadyAsync(ReadyTimeout);
            lone.StartAll();

            // act: the lone node's watchdog finds the serving cluster in the store
            var deadline = DateTime.UtcNow + SplitBrainWatchdogPatience + TimeSpan.FromSeconds(40);
            while (lone[1].IsRunning && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }

            // assert: it shut down as downed (exit code 4), so that a supervisor starts it again, and said why
            Assert.False(lone[1].IsRunning, "the lone node is still waiting in a cluster of its own");
            Assert.Equal(4, lone[1].Process!.ExitCode);
            Assert.Contains("in a cluster with no Up member, while another cluster", await File.ReadAllTextAsync(lone[1].LogFile));
            var (up, unowned) = await LocalCluster.ClusterStatusAsync(serving[1], CancellationToken.None);
            Assert.Equal((2, 0), (up, unowned));
        }
        catch
        {
            output.WriteLine(LocalCluster.Tail(lone[1].LogFile, 40));
            output.WriteLine(LocalCluster.Tail(serving[1].LogFile, 40));
            throw;
        }
    }

    // SplitBrainWatchdog.Patience: how long a node must see its cluster outnumbered before it shuts down.
    private static readonly TimeSpan SplitBrainWatchdogPatience = TimeSpan.FromSeconds(10);
}
