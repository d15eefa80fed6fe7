using ActorHa.Domain;
using Akka.Actor;
using Akka.Cluster.Sharding;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// Keeps every partition started: sends <see cref="ShardRegion.StartEntity"/> for all partitions when the
/// node starts and then periodically, so a partition recovers its journal before its first request and is
/// started again on a survivor as soon as sharding re-homes it. Cheaper than remember-entities, which would
/// add a journal write per shard start to the store that serves user writes.
/// </summary>
public sealed class PartitionStarter : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    public PartitionStarter(IActorRef region, PartitionMap map)
    {
        Receive<Tick>(_ =>
        {
            foreach (var partition in map.All)
            {
                region.Tell(new ShardRegion.StartEntity(partition.ToString()));
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, PartitionMap map) => Akka.Actor.Props.Create(() => new PartitionStarter(region, map));

    protected override void PreStart()
    {
        Self.Tell(Tick.Instance);
        Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }
}
