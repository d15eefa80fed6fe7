using ActorHa.Cluster.Leases;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;

namespace ActorHa.Cluster.Fencing;

/// <summary>
/// On the SQLite store: while this node's lease renewal has waited longer than <see cref="StalledAfter"/> for the lease
/// file, finds who holds the file's write lock and ends that process if it is a member's, on this host, and stopped
/// (the rule and why it is safe: <see cref="LockHolderWatch"/>). Nothing is read while renewals go through.
/// </summary>
public sealed class LeaseLockFence : ReceiveActor, IWithTimers
{
    /// <summary>How often the renewal is looked at; a stopped holder is ended at the second look that finds it stopped.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// A renewal that has waited this long is stuck behind a lock: one takes a few milliseconds, and every lease lapses
    /// 750 ms after its last renewal (ActorHa:Lease), so the holder is ended with time to spare.
    /// </summary>
    public static readonly TimeSpan StalledAfter = TimeSpan.FromMilliseconds(150);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly NodeLease _lease;
    private readonly string[] _files;
    private readonly LockHolderWatch _watch;
    private readonly HashSet<int> _reported = [];

    public LeaseLockFence(NodeLease lease, string leaseFile, ProcessIdentity self)
    {
        _lease = lease;
        _files = [leaseFile, leaseFile + "-shm", leaseFile + "-wal"];
        _watch = new LockHolderWatch(self);
        Receive<Tick>(_ => Check());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(NodeLease lease, string leaseFile, ProcessIdentity self) =>
        Akka.Actor.Props.Create(() => new LeaseLockFence(lease, leaseFile, self));

    protected override void PreStart() => Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);

    private void Check()
    {
        var waiting = _lease.RenewalWaiting;
        if (waiting < StalledAfter)
        {
            _watch.Reset();
            _reported.Clear();
            return;
        }

        // Both reads are of the kernel's tables in /proc and statx: no disk, no lock, well under a millisecond.
        var holders = FileLocks.WriteLockHolders(FileLocks.Inodes(_files));
        foreach (var e in _watch.Check(holders, _cluster.State.Members.Select(m => (m.UniqueAddress, (IEnumerable<string>)m.Roles))))
        {
            switch (e.Action)
            {
                case LockHolderAction.Killed:
                    _log.Warning("Fence: ended process {0} of {1} (SIGKILL): it was stopped (SIGSTOP?) holding the lease file's write lock, and this node's lease renewal had waited {2:0} ms for it. " +
                                 "No node can renew its lease while that lock is held; its supervisor may start it again, and it rejoins as a new member.", e.Pid, e.Member!.Address, waiting.TotalMilliseconds);
                    break;
                case LockHolderAction.Refused:
                    _log.Warning("Fence: could not end stopped process {0} of {1} (errno {2}), which holds the lease file's write lock; leases lapse until it is resumed or killed", e.Pid, e.Member!.Address, e.Errno);
                    break;
                default:
                    if (_reported.Add(e.Pid))
                    {
                        _log.Warning("The lease file's write lock is held by process {0}, which is not a member of this cluster on this host; lease renewals wait for it (left alone: it may not be ActorHa's)", e.Pid);
                    }

                    break;
            }
        }
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }
}

public static class LeaseLockFenceSetup
{
    /// <summary>Only on the SQLite store (PostgreSQL has no file lock), and only where the fence is on and this process can name itself.</summary>
    public static AkkaConfigurationBuilder WithLeaseLockFence(this AkkaConfigurationBuilder builder, ActorHaSettings settings) =>
        !settings.FenceDownedProcesses || ProcessIdentity.Current is not { } self
            ? builder
            : builder.WithActors((system, _, resolver) =>
            {
                if (resolver.GetService<IOwnershipStore>() is SqliteOwnershipStore store)
                {
                    system.ActorOf(LeaseLockFence.Props(resolver.GetService<NodeLease>(), store.FilePath, self), "lease-lock-fence");
                }
            });
}
