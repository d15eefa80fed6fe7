using System.Data.Common;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Coordination;
using Akka.DependencyInjection;
using Akka.Event;

namespace ActorHa.Cluster.Leases;

/// <summary>
/// The lease Akka's split-brain resolver (strategy <c>lease-majority</c>, hocon/actorha.conf) must take before it
/// downs the other side of a split; the side that cannot take it downs itself instead. It is a row in the ownership
/// store held under this node's node lease id, and it counts as held only while that node lease lives
/// (<see cref="IOwnershipStore.TryTakeResolverLease"/>). So a holder that died or froze loses it within one lease TTL
/// without a heartbeat of its own, and a dead node can never win a tie: with <c>keep-majority</c>, a membership of
/// two (the third member downed and not rejoined yet) whose lower-addressed member froze, or lost its host, which
/// gives no connection reset for the crash detector to see, kept that member, and the live one downed itself.
/// </summary>
/// <remarks>
/// Akka's resolver downs its own side as soon as an acquisition says no. A holder that stopped renewing a moment ago
/// is still live in the store, so an acquisition that finds the lease held watches the holder's node lease and takes
/// the lease once that has run out, and says no after a whole TTL of renewals (the holder is alive and reaches the
/// store; in a split that left members indirectly connected, that is also time for the winner's decision to reach
/// this node by gossip). A leader that finds the lease held by a reachable member of its own side takes it over
/// (leadership moves, the lease stays with whoever decided last). A strict minority never takes it
/// (<see cref="GiveUpAsMinority"/>). Errors of the store are retried until the patience runs out.
/// </remarks>
public sealed class ResolverLease : Lease
{
    private static readonly TimeSpan RetryMargin = TimeSpan.FromMilliseconds(50);

    private readonly Func<(IOwnershipStore, NodeLease, LeaseSettings)> _resolve;
    private readonly SplitView _view;
    private readonly ILoggingAdapter _log;
    private readonly Lock _gate = new();
    private (IOwnershipStore Store, NodeLease NodeLease, LeaseSettings Settings)? _services;
    private (string NodeId, long Generation)? _held;
    private Action<Exception>? _onLost;

    /// <summary>Called by Akka's lease provider (hocon: <c>actorha-resolver-lease.lease-class</c>); the rest comes from the node's services.</summary>
    public ResolverLease(Akka.Coordination.LeaseSettings settings, ExtendedActorSystem system)
        : this(settings, () =>
        {
            var resolver = DependencyResolver.For(system).Resolver;
            return (resolver.GetService<IOwnershipStore>(), resolver.GetService<NodeLease>(), resolver.GetService<LeaseSettings>());
        }, new SplitView(
            holder => OnThisSide(Akka.Cluster.Cluster.Get(system).State, holder),
            () => IsStrictMinority(Akka.Cluster.Cluster.Get(system))), Logging.GetLogger(system, typeof(ResolverLease)))
    {
    }

    internal ResolverLease(Akka.Coordination.LeaseSettings settings, IOwnershipStore store, NodeLease nodeLease, LeaseSettings timing, SplitView view, ILoggingAdapter log)
        : this(settings, () => (store, nodeLease, timing), view, log)
    {
    }

    private ResolverLease(Akka.Coordination.LeaseSettings settings, Func<(IOwnershipStore, NodeLease, LeaseSettings)> resolve, SplitView view, ILoggingAdapter log)
        : base(settings)
    {
        _resolve = resolve;
        _view = view;
        _log = log;
    }

    /// <summary>What this node sees of the split when it asks for the lease.</summary>
    /// <param name="IsOnThisSide">Whether a holder (a node lease id) is a member this node sees up and reachable.</param>
    /// <param name="IsStrictMinority">Whether this node cannot reach more than half of the members.</param>
    internal sealed record SplitView(Func<string, bool> IsOnThisSide, Func<bool> IsStrictMinority);

    /// <summary>
    /// This node's own failure detector finds more than half of the members that count (up, leaving) unavailable. Its
    /// own: the cluster state's unreachable set gathers every member's observations, and after a single cut link (A–B)
    /// it holds both ends, so every node, the untouched third included, would count itself a minority.
    /// </summary>
    internal static bool IsStrictMinority(Akka.Cluster.Cluster cluster)
    {
        var members = cluster.State.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving).ToList();
        var unreachable = members.Count(m => !m.UniqueAddress.Equals(cluster.SelfUniqueAddress) && !cluster.FailureDetector.IsAvailable(m.Address));
        return unreachable * 2 > members.Count;
    }

    /// <summary>
    /// Whether the node lease id <paramref name="holder"/> belongs to a member that <paramref name="state"/> shows up
    /// and reachable: the holder is on this side of the split, so taking the lease over from it decides nothing
    /// against anyone.
    /// </summary>
    internal static bool OnThisSide(ClusterEvent.CurrentClusterState state, string holder) =>
        state.Members.Any(m =>
            m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving
            && !state.Unreachable.Contains(m)
            && holder.StartsWith(LeaseSetup.NodeLeaseBase(m.UniqueAddress) + "/", StringComparison.Ordinal));

    public override Task<bool> Acquire() => Acquire(null!);

    public override async Task<bool> Acquire(Action<Exception> leaseLostCallback)
    {
        // Off the resolver's thread: the store calls block.
        await Task.Yield();
        var (store, nodeLease, settings) = Services();
        if (_view.IsStrictMinority())
        {
            GiveUpAsMinority(store, nodeLease);
            return false;
        }

        var started = Stopwatch.GetTimestamp();
        // Long enough to outlive a holder that stopped renewing just before we asked, and no longer.
        var patience = settings.Ttl + settings.RenewInterval;
        while (true)
        {
            var (nodeId, generation) = nodeLease.Current;
            string? refusal;
            TimeSpan retryAfter;
            if (!nodeLease.IsValid)
            {
                // A node whose own lease is not current may be cut off from the store: it must not win.
                (refusal, retryAfter) = ("this node's lease is not current", settings.RenewInterval);
            }
            else
            {
                try
                {
                    var result = store.TryTakeResolverLease(Settings.LeaseName, nodeId);
                    if (!result.Acquired && result.Holder is { } holder && _view.IsOnThisSide(holder))
                    {
                        // The last decision was taken by another member of this side, which has since stopped being
                        // the leader (a restarted node with a lower address leads once it rejoins). Refusing would make
                        // this leader down its own side, the holder included.
                        result = store.TryTakeResolverLease(Settings.LeaseName, nodeId, takeOverFrom: holder);
                        if (result.Acquired)
                        {
                            _log.Info("Split-brain resolver lease {0} taken over from {1}, a reachable member of this side", Settings.LeaseName, holder);
                        }
                    }

                    if (result.Acquired && nodeLease.IsValid && nodeLease.Generation == generation)
                    {
                        lock (_gate)
                        {
                            _held = (nodeId, generation);
                            _onLost = leaseLostCallback;
                        }

                        nodeLease.Renewed -= OnNewGeneration;
                        nodeLease.Renewed += OnNewGeneration;
                        return true;
                    }

                    if (result.Acquired)
                    {
                        (refusal, retryAfter) = ("this node's lease lapsed while taking it", settings.RenewInterval);
                    }
                    else
                    {
                        // Look again after about one renewal, or once the holder's node lease has run out.
                        var untilExpiry = result.RetryAfter + RetryMargin;
                        var oneRenewal = settings.RenewInterval + RetryMargin + RetryMargin;
                        (refusal, retryAfter) = ($"held by {result.Holder}", untilExpiry < oneRenewal ? untilExpiry : oneRenewal);
                    }
                }
                catch (DbException e)
                {
                    (refusal, retryAfter) = ($"the store failed: {e.Message}", settings.RenewInterval);
                }
            }

            var waited = Stopwatch.GetElapsedTime(started);
            if (waited + retryAfter > patience)
            {
                _log.Warning("Split-brain resolver lease {0} not taken after {1:0} ms: {2}. This side of the split downs itself.",
                    Settings.LeaseName, waited.TotalMilliseconds, refusal);
                return false;
            }

            _log.Info("Split-brain resolver lease {0} not taken yet ({1}); trying again in {2:0} ms", Settings.LeaseName, refusal, retryAfter.TotalMilliseconds);
            await Task.Delay(retryAfter).ConfigureAwait(false);
        }
    }

    public override async Task<bool> Release()
    {
        await Task.Yield();
        (string NodeId, long Generation)? held;
        lock (_gate)
        {
            held = _held;
            _held = null;
            _onLost = null;
        }

        if (held is not { } h)
        {
            return true;
        }

        try
        {
            Services().Store.ReleaseResolverLease(Settings.LeaseName, h.NodeId);
            return true;
        }
        catch (DbException e)
        {
            // Not fatal: the row stops counting as held once this node's lease ends. Akka asks again on its next tick.
            _log.Warning("Could not release split-brain resolver lease {0}: {1}", Settings.LeaseName, e.Message);
            lock (_gate)
            {
                _held ??= h;
            }

            return false;
        }
    }

    /// <summary>
    /// A strict minority never takes the lease, and gives up one it holds, so that the majority can take it at once: it
    /// downs itself, as with keep-majority. Taking a free lease as a minority (Akka's lease-majority allows it, for a
    /// majority that died) went wrong in a chaos run: a node that the last decision had downed without its hearing of
    /// it saw every other member unreachable, took the lease that the decider freed as it shut down, and downed the
    /// survivors in its own view: two clusters, until the split-brain watchdog ended one. The lease decides ties.
    /// </summary>
    private void GiveUpAsMinority(IOwnershipStore store, NodeLease nodeLease)
    {
        lock (_gate)
        {
            _held = null;
            _onLost = null;
        }

        try
        {
            store.ReleaseResolverLease(Settings.LeaseName, nodeLease.Current.NodeId);
        }
        catch (DbException e)
        {
            // The row stops counting as held once this node's lease ends, which downing itself brings about.
            _log.Warning("Could not give split-brain resolver lease {0} up: {1}", Settings.LeaseName, e.Message);
        }

        _log.Warning("Split-brain resolver lease {0}: more than half of the members are unreachable, so this side takes no lease and downs itself.", Settings.LeaseName);
    }

    /// <summary>
    /// Held, and still under the node lease generation it was taken with (the store agrees as long as that lives); never
    /// for a strict minority (<see cref="GiveUpAsMinority"/>), so that Akka asks <see cref="Acquire()"/> and it gives up.
    /// </summary>
    public override bool CheckLease()
    {
        if (_view.IsStrictMinority())
        {
            return false;
        }

        (string NodeId, long Generation)? held;
        lock (_gate)
        {
            held = _held;
        }

        var nodeLease = Services().NodeLease;
        return held is { } h && nodeLease.IsValid && nodeLease.Generation == h.Generation;
    }

    private void OnNewGeneration(long generation)
    {
        Action<Exception>? onLost;
        lock (_gate)
        {
            if (_held is not { } h || h.Generation == generation)
            {
                return;
            }

            _held = null;
            onLost = _onLost;
            _onLost = null;
        }

        _log.Warning("Split-brain resolver lease {0} lost: this node's lease expired in the store", Settings.LeaseName);
        onLost?.Invoke(new LeaseException($"The node lease that held {Settings.LeaseName} expired."));
    }

    // Resolved on first use: Akka creates the lease while the actor system starts, before the node lease is taken.
    private (IOwnershipStore Store, NodeLease NodeLease, LeaseSettings Settings) Services()
    {
        lock (_gate)
        {
            if (_services is { } services)
            {
                return services;
            }

            var resolved = _resolve();
            _services = resolved;
            return resolved;
        }
    }
}
