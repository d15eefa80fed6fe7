using System.Globalization;
using System.Runtime.InteropServices;

namespace ActorHa.Cluster.Fencing;

/// <summary>Which processes of this host hold write locks on which files: the kernel's table in /proc/locks.</summary>
public static partial class FileLocks
{
    private const int AtFdCwd = -100;
    private const uint StatxIno = 0x100;

    /// <summary>
    /// The PIDs holding a POSIX or flock write lock on a file whose inode is one of <paramref name="inodes"/>. SQLite
    /// takes POSIX locks: in WAL mode the writer's lock is a byte of the <c>-shm</c> file, in rollback mode bytes of the
    /// database file itself.
    /// </summary>
    public static IReadOnlySet<int> WriteLockHolders(IReadOnlySet<ulong> inodes)
    {
        if (inodes.Count == 0 || !OperatingSystem.IsLinux())
        {
            return new HashSet<int>();
        }

        try
        {
            return WriteLockHolders(File.ReadLines("/proc/locks"), inodes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new HashSet<int>();
        }
    }

    /// <summary>
    /// Parses lines of /proc/locks: "1: POSIX  ADVISORY  WRITE 28334 fe:00:11657486 120 120" is the lock's kind, mode,
    /// type, owner PID, file (device and inode) and byte range. A waiter's line, "1: -> POSIX …", holds nothing and
    /// is skipped, as are OFD locks (no owner PID: "-1").
    /// </summary>
    public static IReadOnlySet<int> WriteLockHolders(IEnumerable<string> lines, IReadOnlySet<ulong> inodes)
    {
        var holders = new HashSet<int>();
        foreach (var line in lines)
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length > 5 && f[1] is "POSIX" or "FLOCK" && f[3] == "WRITE"
                && int.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0
                && ulong.TryParse(f[5].AsSpan(f[5].LastIndexOf(':') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
                && inodes.Contains(inode))
            {
                holders.Add(pid);
            }
        }

        return holders;
    }

    /// <summary>The inode numbers of those of <paramref name="paths"/> that exist (.NET does not expose them; statx(2) does).</summary>
    public static IReadOnlySet<ulong> Inodes(params IEnumerable<string> paths)
    {
        var inodes = new HashSet<ulong>();
        if (!OperatingSystem.IsLinux())
        {
            return inodes;
        }

        foreach (var path in paths)
        {
            if (Inode(path) is { } inode)
            {
                inodes.Add(inode);
            }
        }

        return inodes;
    }

    private static unsafe ulong? Inode(string path)
    {
        // struct statx is 256 bytes with the same layout on every architecture; stx_ino is the u64 at offset 32.
        var buffer = stackalloc byte[256];
        return Statx(AtFdCwd, path, 0, StatxIno, buffer) == 0 && (*(uint*)buffer & StatxIno) != 0
            ? *(ulong*)(buffer + 32)
            : null;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
