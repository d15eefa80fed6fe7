using ActorHa.Cluster.Forwarding;
using ActorHa.Cluster.Leases;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Event;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;

namespace ActorHa.Cluster.Partitions;

/// <summary>Registry key of the shard region that hosts the partitions.</summary>
public sealed class PartitionRegion;

/// <summary>Registry key of the <see cref="PartitionStarter"/>.</summary>
public sealed class PartitionStarterKey;

public static class PartitionsSetup
{
    public const string TypeName = "partition";
    public const string Role = "kv";

    /// <summary>Cluster sharding of the partitions, one shard per partition, all started eagerly.</summary>
    public static AkkaConfigurationBuilder WithPartitions(this AkkaConfigurationBuilder builder, ActorHaSettings settings, PartitionMap map)
    {
        return builder
            .WithShardRegion<PartitionRegion>(
                TypeName,
                (_, _, resolver) =>
                {
                    var claims = resolver.GetService<PartitionClaims>();
                    var lease = resolver.GetService<NodeLease>();
                    var local = resolver.GetService<LocalPartitions>();
                    var unrecoverable = resolver.GetService<UnrecoverablePartitions>();
                    var large = resolver.GetService<LargeValueReplies>();
                    return entityId =>
                    {
                        var partition = PartitionId.Parse(entityId);
                        return PartitionSupervisor.Props(partition, generation => PartitionActor.Props(partition, settings.SnapshotEvery, lease, generation, local: local, large: large), claims, lease, unrecoverable);
                    };
                },
                new PartitionMessageExtractor(map),
                new ShardOptions
                {
                    Role = Role,
                    StateStoreMode = StateStoreMode.DData,
                    RememberEntities = false,
                    // A partition is never idle in the sense that matters: passivating it would only add a recovery.
                    ShouldPassivateIdleEntities = false,
                    HandOffStopMessage = PartitionControl.Stop.Instance,
                })
            .WithActors((system, registry, resolver) =>
            {
                registry.Register<PartitionForwarderKey>(system.ActorOf(
                    PartitionForwarder.Props(map, resolver.GetService<LocalPartitions>(), resolver.GetService<RemoteOwners>(), settings.AttemptTimeout, resolver.GetService<UnrecoverablePartitions>(), resolver.GetService<LargeValueReplies>()),
                    PartitionForwarder.Name));
                if (system.Settings.Config.GetBoolean(CoordinatorWakeUp.Setting, false))
                {
                    var (stateInitialized, problem) = CoordinatorWakeUp.FindStateInitialized();
                    if (stateInitialized is null)
                    {
                        system.Log.Warning("{0} is on, but the shard coordinator's message cannot be found ({1}); a new coordinator waits Akka's 500 ms", CoordinatorWakeUp.Setting, problem);
                    }
                    else
                    {
                        system.ActorOf(Props.Create(() => new CoordinatorWakeUp(TypeName, stateInitialized)), CoordinatorWakeUp.Name);
                    }
                }

                var region = registry.Get<PartitionRegion>();
                registry.Register<PartitionStarterKey>(system.ActorOf(PartitionStarter.Props(region, map), "partition-starter"));
            });
    }
}
