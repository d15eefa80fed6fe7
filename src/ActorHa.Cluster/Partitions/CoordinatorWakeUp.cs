using System.Reflection;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// Lets a shard coordinator that took over from a failed node answer at once. Akka's coordinator, once it has read its
/// state, waits a fixed 500 ms (<c>ShardCoordinator.WatchStateActors</c>, not configurable in Akka.NET 1.5.73) before it
/// tells any region where a shard lives, "so that quick Terminated messages are processed first": regions on nodes that
/// are still members but whose actor just stopped. Every failover that took the coordinator with it waited those
/// 500 ms on top of the rest. Regions on nodes that have left the membership, which is what a failover is, are treated
/// as terminated at once by the same method, so the wait buys nothing there.
/// <para>
/// After a member that was downed (crash, freeze, cut-off) is removed, this actor looks for the coordinator on its own
/// node and, when it finds one it has not seen before, sends it the message that ends the wait (Akka's own
/// <c>StateInitialized</c>), a few times over the next second so that one arrives after the state has been read (one
/// that arrives before is ignored, as are those after: the coordinator then handles it in no other state). A graceful
/// leave is left to Akka's timing: there the leaving node's region is still a member and its Terminated is the one the
/// wait is for. Safety never rests on this: a partition is served only under its ownership lease.
/// </para>
/// <para>
/// The message is internal to Akka.Cluster.Sharding and found by reflection; if a later Akka renames it, the node logs a
/// warning and the coordinator keeps its 500 ms (specs: "The coordinator wake-up").
/// </para>
/// </summary>
public sealed class CoordinatorWakeUp : ReceiveActor, IWithTimers
{
    public const string Name = "coordinator-wake-up";

    public const string Setting = "actorha.sharding.wake-new-coordinator";

    private static readonly TimeSpan LookEvery = TimeSpan.FromMilliseconds(50);

    /// <summary>How long after a removal the coordinator is looked for (the singleton moves right after it).</summary>
    private static readonly TimeSpan LookFor = TimeSpan.FromSeconds(3);

    /// <summary>How long a new coordinator is sent the message (it reads its state first, usually within milliseconds).</summary>
    private static readonly TimeSpan WakeFor = TimeSpan.FromSeconds(1);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _coordinatorPath;
    private readonly object _stateInitialized;
    private readonly HashSet<IActorRef> _seen = [];
    private DateTime _lookUntil = DateTime.MinValue;
    private IActorRef? _waking;
    private DateTime _wakeUntil = DateTime.MinValue;

    public ITimerScheduler Timers { get; set; } = null!;

    public CoordinatorWakeUp(string typeName, object stateInitialized)
    {
        _coordinatorPath = CoordinatorPath(typeName);
        _stateInitialized = stateInitialized;
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            if (removed.PreviousStatus == MemberStatus.Down)
            {
                _lookUntil = DateTime.UtcNow + LookFor;
                Look();
            }
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<Tick>(_ =>
        {
            if (_waking is { } coordinator && DateTime.UtcNow < _wakeUntil)
            {
                coordinator.Tell(_stateInitialized);
            }

            if (DateTime.UtcNow < _lookUntil)
            {
                Look();
            }
            else if (DateTime.UtcNow >= _wakeUntil)
            {
                Timers.Cancel(Tick.Instance);
            }
        });
        Receive<ActorIdentity>(identity =>
        {
            if (identity.Subject is not { } coordinator || !_seen.Add(coordinator))
            {
                return;
            }

            Context.Watch(coordinator);
            if (DateTime.UtcNow >= _lookUntil)
            {
                // Found at start-up: a coordinator that has been running, not one taking over.
                return;
            }

            _log.Info("Shard coordinator {0} started on this node after a downed member was removed; telling it to answer without Akka's 500 ms wait", coordinator.Path);
            _waking = coordinator;
            _wakeUntil = DateTime.UtcNow + WakeFor;
            _lookUntil = DateTime.MinValue;
            coordinator.Tell(_stateInitialized);
        });
        Receive<Terminated>(terminated => _seen.Remove(terminated.ActorRef));
    }

    /// <summary>Where the coordinator singleton of <paramref name="typeName"/> runs (on the oldest member of the role).</summary>
    public static string CoordinatorPath(string typeName) => $"/system/sharding/{typeName}Coordinator/singleton/coordinator";

    protected override void PreStart()
    {
        // The coordinator that is already running (this node formed the cluster or took over earlier) needs nothing.
        Context.ActorSelection(_coordinatorPath).Tell(new Identify(null));
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent));
    }

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

    private void Look()
    {
        Context.ActorSelection(_coordinatorPath).Tell(new Identify(null));
        if (!Timers.IsTimerActive(Tick.Instance))
        {
            Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, LookEvery);
        }
    }

    /// <summary>
    /// The coordinator's message that ends its wait (<c>Akka.Cluster.Sharding.ShardCoordinator+StateInitialized.Instance</c>),
    /// or null with the reason when this Akka build has none.
    /// </summary>
    public static (object? Message, string? Problem) FindStateInitialized()
    {
        const string typeName = "Akka.Cluster.Sharding.ShardCoordinator+StateInitialized";
        var assembly = typeof(Akka.Cluster.Sharding.ClusterSharding).Assembly;
        var instance = assembly.GetType(typeName)?.GetField("Instance", BindingFlags.Public | BindingFlags.Static)?.GetValue(null);
        return instance is null ? (null, $"{typeName}.Instance was not found in {assembly.GetName()}") : (instance, null);
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}
