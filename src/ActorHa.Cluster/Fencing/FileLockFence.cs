using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Fencing;

/// <summary>
/// A SQLite file lock that every node's work waits for, and how long this node has been waiting for it now.
/// </summary>
/// <param name="Name">What the lock is, for the log: "the lease file's write lock".</param>
/// <param name="Consequence">What nobody can do while it is held, for the log.</param>
/// <param name="Waiting">How long this node's own attempt has waited so far (zero when it is not waiting).</param>
/// <param name="Files">The files whose POSIX or flock write locks count.</param>
public sealed record WatchedLock(string Name, string Consequence, Func<TimeSpan> Waiting, IReadOnlyList<string> Files);

/// <summary>
/// On the SQLite store: while this node has waited longer than <see cref="StalledAfter"/> for one of the
/// <see cref="WatchedLock"/>s (its lease renewal for the lease file, its journal writer for its turn), finds who holds
/// the lock and ends that process if it is a member's, on this host, and stopped (the rule and why it is safe:
/// <see cref="LockHolderWatch"/>). Nothing is read while the waits are short.
/// </summary>
public sealed class FileLockFence : ReceiveActor, IWithTimers
{
    /// <summary>How often the waits are looked at; a stopped holder is ended at the second look that finds it stopped.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// A wait this long is stuck behind a lock: a lease renewal or a journal commit holds it for milliseconds, and every
    /// lease lapses 750 ms after its last renewal (ActorHa:Lease), so the holder is ended with time to spare.
    /// </summary>
    public static readonly TimeSpan StalledAfter = TimeSpan.FromMilliseconds(150);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly List<(WatchedLock Lock, LockHolderWatch Watch, HashSet<int> Reported)> _locks;

    public FileLockFence(IReadOnlyList<WatchedLock> locks, ProcessIdentity self)
    {
        _locks = [.. locks.Select(l => (l, new LockHolderWatch(self), new HashSet<int>()))];
        Receive<Tick>(_ => Check());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IReadOnlyList<WatchedLock> locks, ProcessIdentity self) =>
        Akka.Actor.Props.Create(() => new FileLockFence(locks, self));

    protected override void PreStart() => Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, Interval);

    private void Check()
    {
        foreach (var (watched, watch, reported) in _locks)
        {
            var waiting = watched.Waiting();
            if (waiting < StalledAfter)
            {
                watch.Reset();
                reported.Clear();
                continue;
            }

            // Both reads are of the kernel's tables in /proc and statx: no disk, no lock, well under a millisecond.
            var holders = FileLocks.WriteLockHolders(FileLocks.Inodes(watched.Files));
            foreach (var e in watch.Check(holders, _cluster.State.Members.Select(m => (m.UniqueAddress, (IEnumerable<string>)m.Roles))))
            {
                switch (e.Action)
                {
                    case LockHolderAction.Killed:
                        _log.Warning("Fence: ended process {0} of {1} (SIGKILL): it was stopped (SIGSTOP?) holding {2}, and this node had waited {3:0} ms for it. " +
                                     "{4} while that lock is held; its supervisor may start it again, and it rejoins as a new member.", e.Pid, e.Member!.Address, watched.Name, waiting.TotalMilliseconds, watched.Consequence);
                        break;
                    case LockHolderAction.Refused:
                        _log.Warning("Fence: could not end stopped process {0} of {1} (errno {2}), which holds {3}; {4} until it is resumed or killed", e.Pid, e.Member!.Address, e.Errno, watched.Name, watched.Consequence.ToLowerInvariant());
                        break;
                    default:
                        if (reported.Add(e.Pid))
                        {
                            _log.Warning("{0} is held by process {1}, which is not a member of this cluster on this host; this node waits for it (left alone: it may not be ActorHa's)", watched.Name, e.Pid);
                        }

                        break;
                }
            }
        }
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }
}

public static class FileLockFenceSetup
{
    /// <summary>
    /// Only on SQLite (PostgreSQL has no file lock a client process holds), and only where the fence is on and this
    /// process can name itself. Watches the lease file's write lock, and the journal writers' turn and write lock when
    /// the journal is written by ActorHa's writer.
    /// </summary>
    public static AkkaConfigurationBuilder WithFileLockFence(this AkkaConfigurationBuilder builder, ActorHaSettings settings) =>
        !settings.FenceDownedProcesses || settings.Store != StoreKind.Sqlite || ProcessIdentity.Current is not { } self
            ? builder
            : builder.WithActors((system, _, resolver) =>
            {
                var locks = new List<WatchedLock>();
                if (resolver.GetService<IOwnershipStore>() is SqliteOwnershipStore store)
                {
                    var lease = resolver.GetService<NodeLease>();
                    locks.Add(new WatchedLock("the lease file's write lock", "No node can renew its lease",
                        () => lease.RenewalWaiting, [store.FilePath, store.FilePath + "-shm", store.FilePath + "-wal"]));
                }

                if (settings.SqliteJournalWriter && new SqliteConnectionStringBuilder(settings.EffectiveConnectionString).DataSource is { Length: > 0 } source)
                {
                    var journal = Path.GetFullPath(source);
                    locks.Add(new WatchedLock("the journal's writer lock", "No node can write to the journal",
                        () => JournalWriterTurn.LongestWaiting(journal), [JournalWriterTurn.LockFilePath(journal), journal, journal + "-shm", journal + "-wal"]));
                }

                if (locks.Count > 0)
                {
                    system.ActorOf(FileLockFence.Props(locks, self), "file-lock-fence");
                }
            });
}
