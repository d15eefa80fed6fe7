using System.Collections.Immutable;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Partitions;

/// <summary>The starter that keeps every partition started, on a one-member cluster with a probe for the shard region.</summary>
public sealed class PartitionStarterSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(output: output)
{
    private static readonly PartitionMap Map = new(4);

    [Fact]
    public async Task Once_the_node_shuts_down_it_asks_for_no_more_partition_starts()
    {
        // arrange: a member of its own cluster whose shutdown is held in its first phase for a while, and a starter that
        // has begun its rounds of starts
        var system = ActorSystem.Create("starter", ConfigurationFactory.ParseString("""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp.hostname = 127.0.0.1
            akka.remote.dot-netty.tcp.port = 0
            akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
            akka.coordinated-shutdown.exit-clr = off
            """));
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            cluster.Join(cluster.SelfAddress);
            AwaitCondition(() => cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up, TimeSpan.FromSeconds(10));
            var shutdown = CoordinatedShutdown.Get(system);
            shutdown.AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "hold", async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(3));
                return Done.Instance;
            });
            var region = CreateTestProbe(system);
            region.SetAutoPilot(new Akka.TestKit.DelegateAutoPilot((sender, message) =>
            {
                if (message is GetCurrentRegions)
                {
                    sender.Tell(new CurrentRegions(ImmutableHashSet.Create(cluster.SelfAddress)));
                }

                return Akka.TestKit.AutoPilot.KeepRunning;
            }));
            system.ActorOf(PartitionStarter.Props(region.Ref, Map));
            for (var i = 0; i < 2 * Map.PartitionCount; i++)
            {
                region.FishForMessage(m => m is ShardRegion.StartEntity, TimeSpan.FromSeconds(15));
            }

            // act
            _ = shutdown.Run(CoordinatedShutdown.UnknownReason.Instance);
            await Task.Delay(PartitionStarter.Interval); // a round already on its way may still arrive
            while (region.HasMessages)
            {
                region.ReceiveOne(TimeSpan.Zero);
            }

            // assert: while shutdown is held (several of the starter's intervals), no start is asked for
            var starts = region.ReceiveWhile(TimeSpan.FromSeconds(2), m => m as ShardRegion.StartEntity);
            Assert.Empty(starts);
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }
}
