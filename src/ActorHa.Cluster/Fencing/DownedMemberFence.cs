using ActorHa.Cluster.Leases;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;

namespace ActorHa.Cluster.Fencing;

/// <summary>
/// Ends the process of a member the cluster downed while it was stopped (SIGSTOP, Ctrl+Z) on this host, once its node
/// lease has expired (the rule and why it is safe: <see cref="FenceWatch"/>). Membership cannot do this: a downed
/// member is only told to leave, and a stopped process hears nothing. The crash detector downs a dead process at once;
/// this is its other half, for a process that is neither dead nor able to act. Every survivor on the host fences;
/// a second SIGKILL finds the process gone and does nothing.
/// </summary>
public sealed class DownedMemberFence : ReceiveActor, IWithTimers
{
    /// <summary>How often the watched members are checked: a stopped one is ended within about this after its lease expired.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly IOwnershipStore _store;
    private readonly FenceWatch _watch;
    private bool _reading;

    public DownedMemberFence(IOwnershipStore store, ProcessIdentity self)
    {
        _store = store;
        _watch = new FenceWatch(self);
        Receive<ClusterEvent.MemberDowned>(downed => Consider(downed.Member));
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            // A member can go from Up to Removed in one gossip, its downing never published on its own.
            if (removed.PreviousStatus == MemberStatus.Down)
            {
                Consider(removed.Member);
            }
        });
        Receive<Tick>(_ => ReadLeases());
        Receive<LiveLeases>(live =>
        {
            _reading = false;
            foreach (var e in _watch.Sweep(live.Ids, DateTime.UtcNow))
            {
                Report(e);
            }

            if (_watch.Count == 0)
            {
                Timers.Cancel(Tick.Instance);
            }
        });
        Receive<Status.Failure>(failure =>
        {
            // The store does not answer: without it no lease can be known to be over, so nothing is ended.
            _reading = false;
            _log.Debug("Fence: the store did not answer ({0})", failure.Cause.Message);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IOwnershipStore store, ProcessIdentity self) => Akka.Actor.Props.Create(() => new DownedMemberFence(store, self));

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberDowned), typeof(ClusterEvent.MemberRemoved));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Consider(Member member)
    {
        if (member.UniqueAddress.Equals(_cluster.SelfUniqueAddress) || !_watch.Consider(member.UniqueAddress, member.Roles, DateTime.UtcNow))
        {
            return;
        }

        _log.Info("Fence: {0} was downed and its process {1} runs on this host; it is ended if it is found stopped once its node lease has expired", member.Address, ProcessIdentity.FromRoles(member.Roles)!.Pid);
        if (!Timers.IsTimerActive(Tick.Instance))
        {
            Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, TimeSpan.Zero, Interval);
        }
    }

    private void ReadLeases()
    {
        if (_reading)
        {
            return;
        }

        _reading = true;
        var store = _store;
        Task.Run(() => new LiveLeases(store.LiveNodes().Select(n => n.Node).ToList())).PipeTo(Self);
    }

    private void Report(FenceEvent e)
    {
        switch (e.Action)
        {
            case FenceAction.Killed:
                _log.Warning("Fence: ended process {0} of {1} (SIGKILL): the cluster downed it and its node lease expired while it was stopped (SIGSTOP?). " +
                             "A stopped process can hold the store's write lock; its supervisor may start it again, and it rejoins as a new member.", e.Process.Pid, e.Member.Address);
                break;
            case FenceAction.Refused:
                _log.Warning("Fence: could not end stopped process {0} of {1} (errno {2}); if it holds the store's write lock, writes wait until it is resumed or killed", e.Process.Pid, e.Member.Address, e.Errno);
                break;
            case FenceAction.GaveUp:
                _log.Info("Fence: process {0} of {1} still runs {2:0} s after its downing and is not stopped; left to shut itself down", e.Process.Pid, e.Member.Address, FenceWatch.GiveUpAfter.TotalSeconds);
                break;
            default:
                _log.Debug("Fence: process {0} of {1} has exited", e.Process.Pid, e.Member.Address);
                break;
        }
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record LiveLeases(IReadOnlyCollection<string> Ids);
}

public static class DownedMemberFenceSetup
{
    /// <summary>Off when the setting says so, or where this process cannot name itself (not Linux).</summary>
    public static AkkaConfigurationBuilder WithDownedMemberFence(this AkkaConfigurationBuilder builder, ActorHaSettings settings) =>
        !settings.FenceDownedProcesses || ProcessIdentity.Current is not { } self
            ? builder
            : builder.WithActors((system, _, resolver) => system.ActorOf(DownedMemberFence.Props(resolver.GetService<IOwnershipStore>(), self), "downed-member-fence"));
}
