using ActorHa.Domain;
using Akka.Actor;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// The partitions running on this node, so that <see cref="PartitionClient"/> can tell a local partition directly
/// instead of through the shard region, the shard and the <see cref="PartitionSupervisor"/>: three mailboxes, and
/// on this 2-core machine three waits for a core, fewer per request.
/// A partition registers once it has recovered and unregisters when it is told to stop (hand-off) and when it
/// stops. A message that still reaches one that just stopped is lost like any message to a moving partition, and
/// the client's next attempt goes through the region. Safety does not rest on this table: every partition checks
/// its own lease before it answers, however the message reached it.
/// </summary>
public sealed class LocalPartitions(PartitionMap map)
{
    private readonly IActorRef?[] _running = new IActorRef?[map.PartitionCount];

    /// <summary>The running local partition actor, or null when the partition is elsewhere, starting or stopping.</summary>
    public IActorRef? For(PartitionId partition) => Volatile.Read(ref _running[partition.Value]);

    public void Register(PartitionId partition, IActorRef actor) => Volatile.Write(ref _running[partition.Value], actor);

    /// <summary>Removes <paramref name="actor"/> only: a newer incarnation that registered meanwhile stays.</summary>
    public void Unregister(PartitionId partition, IActorRef actor) => Interlocked.CompareExchange(ref _running[partition.Value], null, actor);
}
