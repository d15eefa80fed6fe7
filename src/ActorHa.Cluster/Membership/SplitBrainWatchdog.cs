using ActorHa.Cluster.Leases;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Ends a split brain that the split-brain resolver left behind. Under heavy overload (heartbeats stuck behind
/// megabytes of values on the one remoting connection) members can take contradictory downing decisions and end up
/// as separate clusters that each consider the others gone for good: seen as three one-member clusters, each ready,
/// each serving only the partitions whose rows it happened to hold and answering the rest with 503, until restarted.
/// The leases keep that safe, never two owners, but nothing in Akka ends it: a removed member is quarantined and
/// never heard from again.
/// <para>
/// The store that fences the partitions is the witness. Every second, each Up member records which cluster it is in
/// (the address of that cluster's oldest member) next to its node lease, and reads every live lease with its cluster.
/// The cluster with the most live members wins (ties: the lowest cluster address). A member of any other cluster that
/// still sees that for <see cref="Patience"/> shuts down as if downed (exit code 4), so that its supervisor restarts it
/// and it joins the winning cluster through its seeds. Members in the middle of a change (a new oldest member, a node
/// joining or leaving) disagree only for a gossip round or two, far less than the patience.
/// </para>
/// <para>
/// A member can also be stuck before it is ever Up: restarted while the rest of its cluster was frozen, it found no
/// seed that answered, joined itself, and waits for <c>MinMembers</c> in a cluster of its own, answering 503 to every
/// request, while the others, resumed, serve as a cluster it will never hear of (seen in a probe of two of three nodes
/// stopped at once). Such a member, Joining or WeaklyUp in a membership with no Up member for <see cref="Patience"/>,
/// shuts down as if downed as soon as the store shows another cluster's live members, and joins them when restarted.
/// A first formation is left alone: nobody reports a cluster before some member is Up.
/// </para>
/// </summary>
public sealed class SplitBrainWatchdog : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A disagreement shorter than this is a change in progress, not a split brain: when the oldest member dies, its row
    /// names its own cluster until its node lease expires (1 s), and the survivors' rows name the old oldest member until
    /// their next report (1 s). Warned about every kill of the oldest node, operators would learn to ignore the warning.
    /// </summary>
    public static readonly TimeSpan WarnAfter = TimeSpan.FromSeconds(3);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly IOwnershipStore _store;
    private readonly NodeLease _lease;
    private DateTime? _losingSince;
    private DateTime? _aloneSince;
    private bool _checking;

    public SplitBrainWatchdog(IOwnershipStore store, NodeLease lease)
    {
        _store = store;
        _lease = lease;
        Receive<Tick>(_ => Check());
        Receive<Observed>(OnObserved);
        Receive<ObservedWhileAlone>(OnObservedWhileAlone);
        Receive<Status.Failure>(failure =>
        {
            // The store is unreachable: the node lease notices that on its own; nothing to judge here.
            _checking = false;
            _log.Debug("Split-brain watchdog: the store did not answer ({0})", failure.Cause.Message);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IOwnershipStore store, NodeLease lease) => Akka.Actor.Props.Create(() => new SplitBrainWatchdog(store, lease));

    /// <summary>The cluster that should survive among the live nodes: most members, then the lowest address; null if none reported.</summary>
    public static string? Winner(IEnumerable<(string Node, string? Cluster)> live) =>
        live.Where(n => n.Cluster is not null)
            .GroupBy(n => n.Cluster!, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Key)
            .FirstOrDefault();

    protected override void PreStart() => Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);

    private void Check()
    {
        if (_checking || !_lease.IsValid)
        {
            return;
        }

        if (_cluster.SelfMember.Status != MemberStatus.Up)
        {
            CheckAlone();
            return;
        }

        _aloneSince = null;

        var oldest = _cluster.State.Members.Where(m => m.Status == MemberStatus.Up).Aggregate((Member?)null, (a, m) => a is null || m.IsOlderThan(a) ? m : a);
        if (oldest is null)
        {
            return;
        }

        var mine = oldest.Address.ToString();
        var node = _lease.Current.NodeId;
        var store = _store;
        _checking = true;
        Task.Run(() =>
        {
            store.ReportCluster(node, mine);
            return new Observed(mine, store.LiveNodes());
        }).PipeTo(Self);
    }

    private void OnObserved(Observed observed)
    {
        _checking = false;
        var winner = Winner(observed.Live);
        if (winner is null || winner == observed.Mine)
        {
            if (_losingSince is { } since && DateTime.UtcNow - since >= WarnAfter)
            {
                _log.Info("Split-brain watchdog: this node's cluster is the one that survives again");
            }

            _losingSince = null;
            return;
        }

        var members = observed.Live.Count(n => n.Cluster == observed.Mine);
        var theirs = observed.Live.Count(n => n.Cluster == winner);
        _losingSince ??= DateTime.UtcNow;
        var losingFor = DateTime.UtcNow - _losingSince.Value;
        if (losingFor < Patience)
        {
            var message = $"Split-brain watchdog: another cluster shares this store: {winner} with {theirs} live member(s), against this node's {observed.Mine} with {members}";
            if (losingFor < WarnAfter)
            {
                _log.Debug(message);
            }
            else
            {
                _log.Warning(message);
            }

            return;
        }

        _log.Error("Split-brain watchdog: for {0:0} s another cluster ({1}, {2} live member(s)) has outnumbered this node's ({3}, {4}) in the store: shutting down so that this node restarts and joins it",
            Patience.TotalSeconds, winner, theirs, observed.Mine, members);
        CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClusterDowningReason.Instance);
        Timers.CancelAll();
    }

    /// <summary>Not Up yet, in a membership where nobody is: after the patience, looks for another cluster in the store.</summary>
    private void CheckAlone()
    {
        var status = _cluster.SelfMember.Status;
        if (status is not (MemberStatus.Joining or MemberStatus.WeaklyUp) || _cluster.State.Members.Any(m => m.Status == MemberStatus.Up))
        {
            _aloneSince = null;
            return;
        }

        _aloneSince ??= DateTime.UtcNow;
        if (DateTime.UtcNow - _aloneSince < Patience)
        {
            return;
        }

        var store = _store;
        _checking = true;
        Task.Run(() => new ObservedWhileAlone(store.LiveNodes())).PipeTo(Self);
    }

    private void OnObservedWhileAlone(ObservedWhileAlone observed)
    {
        _checking = false;
        var winner = Winner(observed.Live);
        if (winner is null || _cluster.SelfMember.Status == MemberStatus.Up)
        {
            return;
        }

        _log.Error("Split-brain watchdog: for {0:0} s this node has been {1} in a cluster with no Up member, while another cluster ({2}, {3} live member(s)) serves from the store: shutting down so that this node restarts and joins it",
            Patience.TotalSeconds, _cluster.SelfMember.Status, winner, observed.Live.Count(n => n.Cluster == winner));
        CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClusterDowningReason.Instance);
        Timers.CancelAll();
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record Observed(string Mine, IReadOnlyList<(string Node, string? Cluster)> Live);

    private sealed record ObservedWhileAlone(IReadOnlyList<(string Node, string? Cluster)> Live);
}

public static class SplitBrainWatchdogSetup
{
    public static AkkaConfigurationBuilder WithSplitBrainWatchdog(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _, resolver) =>
            system.ActorOf(SplitBrainWatchdog.Props(resolver.GetService<IOwnershipStore>(), resolver.GetService<NodeLease>()), "split-brain-watchdog"));
}
