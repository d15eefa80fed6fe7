using ActorHa.Cluster.Leases;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Joins the seed nodes, and keeps the first seed from starting a cluster of its own beside one that runs.
/// <para>
/// Akka's first seed node (the one its own seed list names first) asks the other seeds to let it in, and joins itself
/// when none has answered within <c>seed-node-timeout</c> (3 s here). That is how a cluster forms the first time, but a
/// first seed restarted while the others run and are merely slow to answer (a loaded machine, a member still busy
/// taking over partitions) then becomes a one-member cluster beside them: it waits for <c>MinMembers</c> and answers
/// 503, until the split-brain watchdog ends it after 10 s and a supervisor restarts it. Where nothing restarts it
/// (a CI run's multi-node spec) it stays out. No timeout is long enough to rule that out.
/// </para>
/// <para>
/// The store is the witness, as for the watchdog: every Up member reports its cluster next to its node lease each
/// second. When the store shows a live member of some cluster as this node starts, the node lists itself last, so
/// that Akka runs the joining process of any other seed: it asks the other seeds every <c>seed-node-timeout</c> until
/// one lets it in, and never joins itself. Should every such member be gone before one answers (their leases expire
/// within a second of their death), the node starts a cluster after all: a whole cluster restarted at once still forms.
/// A first formation is unchanged: nobody reports a cluster before some member is Up.
/// </para>
/// </summary>
public sealed class SeedJoin : ReceiveActor, IWithTimers
{
    /// <summary>How often a node that waits to be let in looks whether any cluster is left to join.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>How often a node still waiting to be let in says so, by default.</summary>
    public static readonly TimeSpan DefaultReportEvery = TimeSpan.FromSeconds(30);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly IOwnershipStore _store;
    private readonly IReadOnlyList<Address> _seeds;
    private bool _looking;
    private DateTime _waitingSince;
    private DateTime _lastReport;

    private readonly TimeSpan _reportEvery;

    public SeedJoin(IOwnershipStore store, IReadOnlyList<Address> seeds, TimeSpan? reportEvery = null)
    {
        _store = store;
        _seeds = seeds;
        _reportEvery = reportEvery ?? DefaultReportEvery;
        Receive<Observed>(OnStart);
        Receive<Status.Failure>(failure =>
        {
            // The store did not answer as the node starts: Akka's own order. The node lease reports the store's outage.
            _log.Warning("Joining the seed nodes in the order given: the store did not say whether a cluster runs ({0})", failure.Cause.Message);
            _cluster.JoinSeedNodes(Order(_seeds, _cluster.SelfAddress, []));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IOwnershipStore store, IReadOnlyList<Address> seeds, TimeSpan? reportEvery = null) =>
        Akka.Actor.Props.Create(() => new SeedJoin(store, seeds, reportEvery));

    /// <summary>
    /// The order to join the seeds in: as given, unless this node is named first among other seeds while the store shows
    /// live members of a cluster; then this node comes last, so that Akka never lets it join itself. A list that names
    /// only this node (once or more) is a cluster of its own by configuration, and stays so.
    /// </summary>
    public static IReadOnlyList<Address> Order(IReadOnlyList<Address> seeds, Address self, IEnumerable<(string Node, string? Cluster)> live)
    {
        var others = seeds.Where(s => !s.Equals(self)).Distinct().ToList();
        if (others.Count == 0)
        {
            return [self];
        }

        return seeds[0].Equals(self) && live.Any(n => n.Cluster is not null) ? [.. others, self] : seeds;
    }

    protected override void PreStart()
    {
        var store = _store;
        Task.Run(() => new Observed(store.LiveNodes())).PipeTo(Self);
    }

    private void OnStart(Observed observed)
    {
        var self = _cluster.SelfAddress;
        var order = Order(_seeds, self, observed.Live);
        _cluster.JoinSeedNodes(order);
        if (!_seeds[0].Equals(self) || order[0].Equals(self))
        {
            // Akka's own order (this node was not named first, or it may form the cluster): nothing to watch.
            Context.Stop(Self);
            return;
        }

        var clusters = observed.Live.Where(n => n.Cluster is not null).Select(n => n.Cluster!).Distinct().ToList();
        _log.Info("Joining the running cluster ({0}, {1} live member(s) in the store) through the other seeds; this node will not start a cluster of its own while one runs",
            string.Join(", ", clusters), observed.Live.Count(n => n.Cluster is not null));
        _waitingSince = _lastReport = DateTime.UtcNow;
        Become(Waiting);
        Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);
    }

    private void Waiting()
    {
        Receive<Tick>(_ =>
        {
            if (_cluster.SelfMember.Status != MemberStatus.Removed)
            {
                // Let in (or on its way out of a cluster it was in): nothing left to watch.
                Context.Stop(Self);
                return;
            }

            if (_looking)
            {
                return;
            }

            _looking = true;
            var store = _store;
            Task.Run(() => new Observed(store.LiveNodes())).PipeTo(Self);
        });
        Receive<Observed>(observed =>
        {
            _looking = false;
            if (_cluster.SelfMember.Status != MemberStatus.Removed)
            {
                return;
            }

            if (observed.Live.Any(n => n.Cluster is not null))
            {
                // Still a cluster to join, but none of the seeds lets this node in: say why it does not form one itself
                // (Akka's own warning names only the seeds), so that an operator finds seeds that miss the running cluster.
                if (DateTime.UtcNow - _lastReport >= _reportEvery)
                {
                    _lastReport = DateTime.UtcNow;
                    _log.Warning("For {0:0} s no seed ({1}) has let this node in, while the store shows {2} live member(s) of a running cluster ({3}): it keeps asking rather than start a cluster beside it. Check that its seeds include members of that cluster.",
                        (DateTime.UtcNow - _waitingSince).TotalSeconds,
                        string.Join(", ", _seeds.Where(a => !a.Equals(_cluster.SelfAddress))),
                        observed.Live.Count(n => n.Cluster is not null),
                        string.Join(", ", observed.Live.Where(n => n.Cluster is not null).Select(n => n.Cluster!).Distinct()));
                }

                return;
            }

            _log.Warning("No live member of any cluster is left in the store and no seed has let this node in: it starts a cluster");
            _cluster.Join(_cluster.SelfAddress);
            Context.Stop(Self);
        });
        Receive<Status.Failure>(failure =>
        {
            _looking = false;
            _log.Debug("Seed join: the store did not answer ({0})", failure.Cause.Message);
        });
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record Observed(IReadOnlyList<(string Node, string? Cluster)> Live);
}

public static class SeedJoinSetup
{
    /// <summary>Joins <paramref name="seeds"/> (Akka addresses) through <see cref="SeedJoin"/> instead of Akka's <c>seed-nodes</c> setting.</summary>
    public static AkkaConfigurationBuilder WithSeedJoin(this AkkaConfigurationBuilder builder, IReadOnlyList<string> seeds) =>
        builder.WithActors((system, _, resolver) =>
            system.ActorOf(SeedJoin.Props(resolver.GetService<IOwnershipStore>(), [.. seeds.Select(Address.Parse)]), "seed-join"));
}
