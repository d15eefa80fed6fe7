using Akka.Cluster;

namespace ActorHa.Cluster.Fencing;

/// <summary>What one sweep of <see cref="FenceWatch"/> did about a watched member.</summary>
public sealed record FenceEvent(UniqueAddress Member, ProcessIdentity Process, FenceAction Action, int Errno = 0);

public enum FenceAction
{
    /// <summary>Its process is stopped and its lease has expired: SIGKILL was delivered.</summary>
    Killed,

    /// <summary>Its process exited (or its PID is another process's now): nothing left to do.</summary>
    Exited,

    /// <summary>The kernel refused the signal; the member stays as it is until someone resumes or ends it.</summary>
    Refused,

    /// <summary>Watched for <see cref="FenceWatch.GiveUpAfter"/> without cause to act (it runs, it is not stopped): no longer watched.</summary>
    GaveUp,
}

/// <summary>
/// The members downed by the cluster whose processes still run on this host, and the rule for ending one: its node
/// lease is no longer live in the store, and its process is stopped (SIGSTOP, Ctrl+Z). Such a process cannot act on
/// its downing, and it may be stopped in the middle of a journal commit: on a shared SQLite file it then holds the
/// database's write lock, and every node's writes wait until it resumes or dies (4 of 10 SIGSTOP failovers before
/// this, docs/failover.md). Ending it is always safe: it was downed, so it must not serve again anyway; its lease has
/// expired, so its partitions belong to others already; and a process killed mid-commit leaves only a transaction the
/// database rolls back. A downed process that still runs is left to shut itself down (exit code 4), as before.
/// </summary>
public sealed class FenceWatch(ProcessIdentity self, Func<ProcessIdentity, (KillOutcome Outcome, int Errno)> kill)
{
    /// <summary>Long after any downed process that runs would have exited by itself.</summary>
    public static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(2);

    private readonly Dictionary<UniqueAddress, (ProcessIdentity Process, DateTime Since)> _watched = [];

    public FenceWatch(ProcessIdentity self)
        : this(self, HostProcesses.Kill)
    {
    }

    public int Count => _watched.Count;

    /// <summary>
    /// Starts watching a member the cluster downed, if its process runs on this host: it published its identity and
    /// shares this process's boot and PID namespace. Returns whether it is watched.
    /// </summary>
    public bool Consider(UniqueAddress member, IEnumerable<string> roles, DateTime now)
    {
        var process = ProcessIdentity.FromRoles(roles);
        // Gone already (a member's removal often follows its downing after it was ended): nothing to watch.
        if (process is null || !process.SharesPidsWith(self) || process.Pid == self.Pid || _watched.ContainsKey(member) || HostProcesses.ReadStat(process) is null)
        {
            return false;
        }

        _watched[member] = (process, now);
        return true;
    }

    /// <summary>
    /// Checks every watched member against the live node leases read from the store just before
    /// (<paramref name="liveLeases"/>, lease ids as the store keeps them) and ends the stopped ones whose lease is gone.
    /// </summary>
    public IReadOnlyList<FenceEvent> Sweep(IReadOnlyCollection<string> liveLeases, DateTime now)
    {
        var events = new List<FenceEvent>();
        foreach (var (member, (process, since)) in _watched.ToList())
        {
            var stat = HostProcesses.ReadStat(process);
            if (stat is null)
            {
                events.Add(new FenceEvent(member, process, FenceAction.Exited));
                _watched.Remove(member);
                continue;
            }

            var leasePrefix = Leases.LeaseSetup.NodeLeaseBase(member) + "/";
            if (stat.Value.IsStopped && !liveLeases.Any(lease => lease.StartsWith(leasePrefix, StringComparison.Ordinal)))
            {
                var (outcome, errno) = kill(process);
                events.Add(new FenceEvent(member, process, outcome switch
                {
                    KillOutcome.Killed => FenceAction.Killed,
                    KillOutcome.Gone => FenceAction.Exited,
                    _ => FenceAction.Refused,
                }, errno));
                _watched.Remove(member);
                continue;
            }

            if (now - since >= GiveUpAfter)
            {
                events.Add(new FenceEvent(member, process, FenceAction.GaveUp));
                _watched.Remove(member);
            }
        }

        return events;
    }
}
