using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;

namespace ActorHa.Cluster.Leases;

public static class LeaseSetup
{
    public static IOwnershipStore CreateStore(ActorHaSettings settings) => settings.Store switch
    {
        StoreKind.Sqlite => SqliteOwnershipStore.ForJournal(settings.EffectiveConnectionString),
        StoreKind.Postgres => new PostgresOwnershipStore(settings.EffectiveConnectionString),
        _ => throw new NotSupportedException($"Partition ownership on the {settings.Store} store is not supported."),
    };

    /// <summary>A member's node lease id without its generation: the store keeps <c>&lt;base&gt;/&lt;generation&gt;</c>.</summary>
    public static string NodeLeaseBase(UniqueAddress member) => $"{member.Address.Host}:{member.Address.Port}#{member.Uid}";

    /// <summary>
    /// Takes this node's lease as soon as the actor system runs (the lease id includes the incarnation uid, so a
    /// restarted process never inherits an old lease), stops renewing it once this member is removed, and
    /// releases it as the very last step of a graceful shutdown.
    /// </summary>
    public static AkkaConfigurationBuilder WithNodeLease(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _, resolver) =>
        {
            var lease = resolver.GetService<NodeLease>();
            var cluster = Akka.Cluster.Cluster.Get(system);
            lease.Start(NodeLeaseBase(cluster.SelfUniqueAddress));
            cluster.RegisterOnMemberRemoved(lease.StopRenewing);
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "release-node-lease", () =>
            {
                lease.Release();
                return Task.FromResult(Done.Instance);
            });
        });
}
