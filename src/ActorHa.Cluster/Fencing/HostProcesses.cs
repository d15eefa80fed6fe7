using System.Globalization;
using System.Runtime.InteropServices;

namespace ActorHa.Cluster.Fencing;

/// <summary>A process's scheduling state (the third field of /proc/PID/stat) and its start time in clock ticks since boot.</summary>
public readonly record struct ProcessStat(char State, long StartTicks)
{
    /// <summary>Stopped by a signal (SIGSTOP, or SIGTSTP from Ctrl+Z): it runs again only when someone sends SIGCONT.</summary>
    public bool IsStopped => State == 'T';
}

public enum KillOutcome
{
    /// <summary>SIGKILL was delivered to exactly that process.</summary>
    Killed,

    /// <summary>The process had already exited (its PID may now be another process's, which was left alone).</summary>
    Gone,

    /// <summary>The kernel refused the signal (another user's process, say); see the errno.</summary>
    Refused,
}

/// <summary>Reads and ends processes of this host by <see cref="ProcessIdentity"/>, never by a bare PID.</summary>
public static partial class HostProcesses
{
    private const int SigKill = 9;
    private const int Esrch = 3;
    private const int Enosys = 38;

    // The same numbers on x86-64 and arm64 (the syscall table every architecture shares from 424 on).
    private const long SysPidfdSendSignal = 424;
    private const long SysPidfdOpen = 434;

    /// <summary>The process's state and start time; null when there is no such process (or /proc cannot say).</summary>
    public static ProcessStat? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so the fields are counted after the last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // starttime is field 22 of the whole line; state, field 3, is fields[0] here.
        return fields.Length > 19 && fields[0].Length == 1 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            ? new ProcessStat(fields[0][0], start)
            : null;
    }

    /// <summary>The process's stat if it is still the one <paramref name="identity"/> names; null when that one is gone.</summary>
    public static ProcessStat? ReadStat(ProcessIdentity identity) =>
        ReadStat(identity.Pid) is { } stat && stat.StartTicks == identity.StartTicks ? stat : null;

    /// <summary>
    /// SIGKILL to the process <paramref name="target"/> names, and to no other: a pidfd is opened first and the start
    /// time checked after, so a PID reused between the check and the signal cannot be hit (the pidfd keeps naming the
    /// first process, and a signal to it fails once it is gone).
    /// </summary>
    public static (KillOutcome Outcome, int Errno) Kill(ProcessIdentity target)
    {
        if (!OperatingSystem.IsLinux())
        {
            return (KillOutcome.Refused, Enosys);
        }

        var fd = Syscall(SysPidfdOpen, target.Pid, 0, 0, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            return errno == Esrch ? (KillOutcome.Gone, 0) : (KillOutcome.Refused, errno);
        }

        try
        {
            if (ReadStat(target) is null)
            {
                return (KillOutcome.Gone, 0);
            }

            if (Syscall(SysPidfdSendSignal, fd, SigKill, 0, 0) == 0)
            {
                return (KillOutcome.Killed, 0);
            }

            var errno = Marshal.GetLastPInvokeError();
            return errno == Esrch ? (KillOutcome.Gone, 0) : (KillOutcome.Refused, errno);
        }
        finally
        {
            _ = Close((int)fd);
        }
    }

    // glibc's syscall(2) is a register shuffle with no use of the variadic area, so declaring it with fixed
    // arguments is sound on x86-64 and arm64.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long arg1, long arg2, long arg3, long arg4);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
