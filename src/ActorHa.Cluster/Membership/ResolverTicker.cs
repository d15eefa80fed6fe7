using System.Reflection;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Makes Akka's split-brain resolver decide on time. The resolver takes its decision only on its own tick, and
/// Akka.NET 1.5.73 ticks once a second with no setting to change it (<c>SplitBrainResolverBase.TickInterval</c>):
/// after a frozen or cut-off node's <c>stable-after</c> (200 ms here) has passed, the decision still waited up to a
/// second more, 0.5 s on average, in every such failover. This actor sends the resolver the same tick message
/// every <c>actorha.split-brain-resolver.tick-interval</c> while some unreachable member is not yet downed, so the
/// decision comes at most that long after the view has been stable. A tick only makes the resolver look at its
/// state: every rule (stable-after, the lease, the delay for a minority, releasing the lease) stays Akka's, and the
/// resolver ignores ticks while it waits for its lease. The tick message is internal to Akka.Cluster, so it is found
/// by reflection; if a later Akka renames it, the node logs a warning and the resolver keeps its own 1 s tick
/// (specs: "The resolver ticker").
/// </summary>
public sealed class ResolverTicker : ReceiveActor, IWithTimers
{
    /// <summary>Where <c>ClusterCoreDaemon</c> starts the downing provider's actor (the resolver).</summary>
    public const string ResolverPath = "/system/cluster/core/daemon/downingProvider";

    public const string IntervalSetting = "actorha.split-brain-resolver.tick-interval";

    private static readonly TimeSpan RetryResolve = TimeSpan.FromMilliseconds(500);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly TimeSpan _interval;
    private readonly object _tick;
    private IActorRef? _resolver;

    public ITimerScheduler Timers { get; set; } = null!;

    public ResolverTicker(TimeSpan interval, object tick)
    {
        _interval = interval;
        _tick = tick;
        Receive<Resolve>(_ => Context.ActorSelection(ResolverPath).Tell(new Identify(null)));
        Receive<ActorIdentity>(identity =>
        {
            if (identity.Subject is not { } resolver)
            {
                // The cluster daemon starts the resolver with the cluster, so this is a start-up race at most.
                Timers.StartSingleTimer(Resolve.Instance, Resolve.Instance, RetryResolve);
                return;
            }

            _resolver = resolver;
            Context.Watch(resolver);
            Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, _interval);
            _log.Debug("Ticking the split-brain resolver {0} every {1} ms", resolver.Path, _interval.TotalMilliseconds);
        });
        // Only while a decision is pending: an unreachable member not yet downed. Afterwards the resolver would take the same
        // decision again on every tick (a warning line each time) until the downed member is removed.
        Receive<Tick>(_ =>
        {
            if (_resolver is not null && _cluster.State.Unreachable.Any(m => m.Status != MemberStatus.Down))
            {
                _resolver.Tell(_tick);
            }
        });
        // The resolver stops when this node is removed from the cluster; there is nothing left to tick.
        Receive<Terminated>(_ =>
        {
            Timers.CancelAll();
            _resolver = null;
        });
    }

    protected override void PreStart() => Self.Tell(Resolve.Instance);

    /// <summary>
    /// The resolver's own tick message (<c>Akka.Cluster.SBR.SplitBrainResolverBase+Tick.Instance</c>), or null with the
    /// reason when this Akka build has none.
    /// </summary>
    public static (object? Tick, string? Problem) FindResolverTick()
    {
        const string typeName = "Akka.Cluster.SBR.SplitBrainResolverBase+Tick";
        var type = typeof(Akka.Cluster.Cluster).Assembly.GetType(typeName);
        var instance = type?.GetField("Instance", BindingFlags.Public | BindingFlags.Static)?.GetValue(null);
        return instance is null
            ? (null, $"{typeName}.Instance was not found in {typeof(Akka.Cluster.Cluster).Assembly.GetName()}")
            : (instance, null);
    }

    /// <summary>The configured interval, or null when it is off (the resolver then keeps its own 1 s tick).</summary>
    public static TimeSpan? IntervalFrom(Akka.Configuration.Config config)
    {
        if (!config.HasPath(IntervalSetting))
        {
            return null;
        }

        var value = config.GetString(IntervalSetting);
        if (string.Equals(value, "off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var interval = config.GetTimeSpan(IntervalSetting);
        return interval > TimeSpan.Zero ? interval : throw new Akka.Configuration.ConfigurationException($"{IntervalSetting} must be positive or off, not {value}");
    }

    private sealed class Resolve
    {
        public static readonly Resolve Instance = new();
    }

    private sealed class Tick
    {
        public static readonly Tick Instance = new();
    }
}

public static class ResolverTickerSetup
{
    public static AkkaConfigurationBuilder WithResolverTicker(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _) =>
        {
            if (ResolverTicker.IntervalFrom(system.Settings.Config) is not { } interval)
            {
                return;
            }

            var (tick, problem) = ResolverTicker.FindResolverTick();
            if (tick is null)
            {
                system.Log.Warning("{0} is set, but the split-brain resolver's tick message cannot be found ({1}); the resolver decides on its own 1 s tick", ResolverTicker.IntervalSetting, problem);
                return;
            }

            system.ActorOf(Props.Create(() => new ResolverTicker(interval, tick)), "resolver-ticker");
        });
}
