using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ActorHa.Launcher;

/// <summary>Free loopback ports for clusters started by specs and benchmarks, so they never collide with `actorha up`.</summary>
/// <remarks>
/// Ports are drawn from below the kernel's ephemeral range: a port inside it can be "free" when checked and then be
/// taken as the source port of some outgoing connection (an HTTP client, a remoting link) before our node binds it,
/// which is how a CI run once failed with "address already in use". Ranges handed out by this process are remembered,
/// so two ranges asked for before either is bound (HTTP and remoting of one cluster) never overlap.
/// </remarks>
public static class Ports
{
    /// <summary>The highest TCP port.</summary>
    public const int Max = 65_535;

    private const int Lowest = 10_000;
    private static readonly Lock Gate = new();
    private static readonly HashSet<int> HandedOut = [];

    /// <summary>A base port such that base … base+count-1 are all free right now and not handed out before.</summary>
    public static int FindFreeRange(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var (low, high) = Candidates();
        lock (Gate)
        {
            for (var attempt = 0; attempt < 500; attempt++)
            {
                var start = Random.Shared.Next(low, high - count + 1);
                var range = Enumerable.Range(start, count).ToArray();
                if (range.All(p => !HandedOut.Contains(p) && IsFree(p)))
                {
                    HandedOut.UnionWith(range);
                    return start;
                }
            }
        }

        throw new InvalidOperationException($"No {count} consecutive free ports found on loopback between {low} and {high}.");
    }

    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>The widest stretch of ports outside the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range).</summary>
    private static (int Low, int High) Candidates()
    {
        var (ephemeralLow, ephemeralHigh) = EphemeralRange();
        var below = (Lowest, ephemeralLow - 1);
        var above = (ephemeralHigh + 1, Max);
        return below.Item2 - below.Item1 >= above.Item2 - above.Item1 ? below : above;
    }

    private static (int Low, int High) EphemeralRange()
    {
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range")
                .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var low)
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var high)
                && low > Lowest && high >= low)
            {
                return (low, high);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        // Linux's default; Windows and macOS use 49152–65535, which this also keeps clear of.
        return (32_768, 65_535);
    }
}
