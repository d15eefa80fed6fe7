using System.Globalization;

namespace ActorHa.Cluster.Fencing;

/// <summary>
/// A process named so that no other can be taken for it: the kernel's boot id and the PID namespace say which
/// numbering the PID belongs to (another machine, another boot or another container has its own), and the start
/// time, in clock ticks since boot, tells the process from a later one that was given the same PID.
/// Each member publishes its own as a cluster role, <c>process=&lt;boot id&gt;/&lt;pid namespace&gt;/&lt;pid&gt;/&lt;start&gt;</c>,
/// so that a survivor on the same host can end it once the cluster has downed it (<see cref="DownedMemberFence"/>).
/// </summary>
public sealed record ProcessIdentity(string BootId, string PidNamespace, int Pid, long StartTicks)
{
    public const string RolePrefix = "process=";

    /// <summary>This process; null where the kernel does not say (not Linux, or /proc unreadable): it is then never fenced.</summary>
    public static ProcessIdentity? Current { get; } = ReadCurrent();

    public string Role => string.Create(CultureInfo.InvariantCulture, $"{RolePrefix}{BootId}/{PidNamespace}/{Pid}/{StartTicks}");

    /// <summary>The role as a quoted HOCON string ('=' and '/' end an unquoted HOCON value).</summary>
    public string HoconRole => "\"" + Role + "\"";

    public static bool IsProcessRole(string role) => role.StartsWith(RolePrefix, StringComparison.Ordinal);

    /// <summary>Whether PIDs of <paramref name="other"/> name the same processes as PIDs here.</summary>
    public bool SharesPidsWith(ProcessIdentity other) =>
        string.Equals(BootId, other.BootId, StringComparison.Ordinal) && string.Equals(PidNamespace, other.PidNamespace, StringComparison.Ordinal);

    /// <summary>The identity a member published among its roles; null when it published none or one that does not parse.</summary>
    public static ProcessIdentity? FromRoles(IEnumerable<string> roles) =>
        roles.Where(IsProcessRole).Select(Parse).FirstOrDefault(identity => identity is not null);

    public static ProcessIdentity? Parse(string role)
    {
        if (!IsProcessRole(role))
        {
            return null;
        }

        var parts = role[RolePrefix.Length..].Split('/');
        return parts.Length == 4
               && parts[0].Length > 0 && parts[1].Length > 0
               && int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0
               && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            ? new ProcessIdentity(parts[0], parts[1], pid, start)
            : null;
    }

    private static ProcessIdentity? ReadCurrent()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            var bootId = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            // "pid:[4026531836]": the namespace's inode, the same for every process that shares it.
            var ns = new FileInfo("/proc/self/ns/pid").LinkTarget;
            var pid = Environment.ProcessId;
            var stat = HostProcesses.ReadStat(pid);
            if (string.IsNullOrEmpty(bootId) || ns is null || stat is null)
            {
                return null;
            }

            var inode = ns.Trim().TrimStart("pid:".ToCharArray()).Trim('[', ']');
            return inode.Length == 0 || inode.Contains('/', StringComparison.Ordinal) ? null : new ProcessIdentity(bootId, inode, pid, stat.Value.StartTicks);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
