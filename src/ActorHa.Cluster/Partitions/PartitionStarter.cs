using ActorHa.Domain;
using Akka.Actor;
using Akka.Cluster.Sharding;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// Keeps every partition started: sends <see cref="ShardRegion.StartEntity"/> for all partitions when the
/// node starts and then periodically, so a partition recovers its journal before its first request and is
/// started again on a survivor as soon as sharding re-homes it. Cheaper than remember-entities, which would
/// add a journal write per shard start to the store that serves user writes.
/// The first round waits (up to <see cref="MaxInitialWait"/>) until the coordinator knows a shard region on
/// every Up member: the coordinator places a new shard on the region with the fewest, so starting before
/// the others registered would pile every partition on the first node and cost a rebalance later.
/// </summary>
public sealed class PartitionStarter : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxInitialWait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);

    private readonly IActorRef _region;
    private readonly PartitionMap _map;
    private readonly DateTime _startedAt = DateTime.UtcNow;

    public PartitionStarter(IActorRef region, PartitionMap map)
    {
        _region = region;
        _map = map;

        Receive<Tick>(_ => _region.Tell(GetCurrentRegions.Instance));
        Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(_ => { });
        Receive<Akka.Cluster.ClusterEvent.CurrentClusterState>(_ => { });
        Receive<CurrentRegions>(regions =>
        {
            var cluster = Akka.Cluster.Cluster.Get(Context.System);
            var up = cluster.State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up && m.HasRole(PartitionsSetup.Role));
            var selfUp = cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up;
            if ((selfUp && regions.Regions.Count >= up) || DateTime.UtcNow - _startedAt > MaxInitialWait)
            {
                StartAll();
                Become(Started);
                Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);
            }
            else
            {
                Timers.StartSingleTimer(Tick.Instance, Tick.Instance, Poll);
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, PartitionMap map) => Akka.Actor.Props.Create(() => new PartitionStarter(region, map));

    protected override void PreStart()
    {
        Timers.StartSingleTimer(Tick.Instance, Tick.Instance, Poll);
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, typeof(Akka.Cluster.ClusterEvent.MemberRemoved));
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void Started()
    {
        Receive<Akka.Cluster.ClusterEvent.CurrentClusterState>(_ => { });
        Receive<Tick>(_ => StartAll());
        Receive<CurrentRegions>(_ => { });
        // A member gone means partitions to re-home: ask for them at once rather than on the next tick.
        Receive<Akka.Cluster.ClusterEvent.MemberRemoved>(_ => StartAll());
    }

    private void StartAll()
    {
        if (CoordinatedShutdown.Get(Context.System).ShutdownReason is not null)
        {
            // Shutting down: a start now would only sit in the region's buffer waiting for a shard home, and the region's
            // graceful shutdown waits for its buffer to drain. When every node stopped at once, the last one waited out
            // the 10 s shutdown timeout that way (found by a probe; "remaining buffered messages [629]").
            return;
        }

        foreach (var partition in _map.All)
        {
            _region.Tell(new ShardRegion.StartEntity(partition.ToString()));
        }
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }
}
