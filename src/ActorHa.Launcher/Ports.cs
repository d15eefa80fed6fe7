using System.Net;
using System.Net.Sockets;

namespace ActorHa.Launcher;

/// <summary>Free loopback ports for clusters started by specs and benchmarks, so they never collide with `actorha up`.</summary>
public static class Ports
{
    /// <summary>A base port such that base … base+count-1 are all free right now.</summary>
    public static int FindFreeRange(int count)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var start = Random.Shared.Next(20_000, 60_000 - count);
            if (Enumerable.Range(start, count).All(IsFree))
            {
                return start;
            }
        }

        throw new InvalidOperationException($"No {count} consecutive free ports found on loopback.");
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
}
