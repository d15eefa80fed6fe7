using Akka.Cluster;

namespace ActorHa.Cluster.Fencing;

/// <summary>What one check of <see cref="LockHolderWatch"/> found about a process holding a lock every node waits for (the lease file, or the journal).</summary>
public sealed record LockHolderEvent(int Pid, UniqueAddress? Member, LockHolderAction Action, int Errno = 0);

public enum LockHolderAction
{
    /// <summary>A member's process, stopped at two checks in a row: SIGKILL was delivered.</summary>
    Killed,

    /// <summary>The kernel refused the signal; the lock stays held until someone resumes or ends the process.</summary>
    Refused,

    /// <summary>A process that is not a member on this host (by its published identity): never touched.</summary>
    NotAMember,
}

/// <summary>
/// The rule for a process that holds a SQLite lock every node waits for while this node waits for it: if it is the
/// process of a cluster member on this host and it is stopped (SIGSTOP, Ctrl+Z) at two checks in a row, end it.
/// A lease transaction holds the lease file's write lock for a few milliseconds; a process stopped inside one keeps
/// it, and then no node can renew its lease, every lease lapses within a second, the split-brain resolver may not
/// decide, and the whole cluster downs itself (docs/failover.md, "Limits"). <see cref="DownedMemberFence"/> cannot
/// help there: it waits for a downing, which needs the resolver's lease, which needs this lock. A process stopped inside
/// a journal commit holds the journal writers' turn, and every node's writes wait until it is downed and fenced.
/// <para>
/// Ending the process is safe whether or not the cluster has downed it: a stopped process does nothing until it is
/// resumed, so ending it is a crash, which every guarantee already allows for (its transaction rolls back; a write it
/// was making was not yet acknowledged). The two checks, ~100 ms apart, leave alone a process stopped only for an
/// instant (a debugger's or a test harness's stop-and-resume). A process that publishes no identity, or one that is
/// not a member, may not be ActorHa's at all: it is only reported.
/// </para>
/// </summary>
public sealed class LockHolderWatch(
    ProcessIdentity self,
    Func<ProcessIdentity, ProcessStat?> readStat,
    Func<ProcessIdentity, (KillOutcome Outcome, int Errno)> kill)
{
    private HashSet<ProcessIdentity> _stoppedLastTime = [];

    public LockHolderWatch(ProcessIdentity self)
        : this(self, HostProcesses.ReadStat, HostProcesses.Kill)
    {
    }

    /// <summary>Forgets what earlier checks saw: this node is not waiting any more.</summary>
    public void Reset() => _stoppedLastTime = [];

    /// <summary>
    /// One check: <paramref name="holders"/> hold the write lock now (from /proc/locks), <paramref name="members"/> are
    /// the cluster's members as this node sees them, with their roles (any status: a downed one that still runs holds
    /// locks too).
    /// </summary>
    public IReadOnlyList<LockHolderEvent> Check(IReadOnlySet<int> holders, IEnumerable<(UniqueAddress Member, IEnumerable<string> Roles)> members)
    {
        var events = new List<LockHolderEvent>();
        var stopped = new HashSet<ProcessIdentity>();
        var onHost = members
            .Select(m => (m.Member, Process: ProcessIdentity.FromRoles(m.Roles)))
            .Where(m => m.Process is not null && m.Process.SharesPidsWith(self) && m.Process.Pid != self.Pid)
            .ToList();
        foreach (var pid in holders.Where(pid => pid != self.Pid))
        {
            var (member, process) = onHost.FirstOrDefault(m => m.Process!.Pid == pid);
            if (member is null || readStat(process!) is not { } stat)
            {
                // No member published this PID, or the member's process is gone and the PID is another's now.
                events.Add(new LockHolderEvent(pid, null, LockHolderAction.NotAMember));
                continue;
            }

            if (!stat.IsStopped)
            {
                continue;
            }

            if (!_stoppedLastTime.Contains(process!))
            {
                stopped.Add(process!);
                continue;
            }

            var (outcome, errno) = kill(process!);
            if (outcome == KillOutcome.Killed)
            {
                events.Add(new LockHolderEvent(pid, member, LockHolderAction.Killed));
            }
            else if (outcome == KillOutcome.Refused)
            {
                events.Add(new LockHolderEvent(pid, member, LockHolderAction.Refused, errno));
            }
        }

        _stoppedLastTime = stopped;
        return events;
    }
}
