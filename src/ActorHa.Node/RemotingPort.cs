using System.Net;
using System.Net.Sockets;

namespace ActorHa.Node;

/// <summary>The Akka remoting port is taken by another process; the message says which.</summary>
public sealed class PortInUseException(string message) : Exception(message);

/// <summary>Refuses to start on an Akka remoting port that something else listens on.</summary>
/// <remarks>
/// Akka.Remote's DotNetty transport binds with .NET's ReuseAddress, which on Linux is SO_REUSEADDR and SO_REUSEPORT
/// together: a second node given a running node's port bound it too, and the kernel then shared incoming connections
/// between the two processes (found by a probe: the second node formed a cluster of its own on the first one's port).
/// A port held by a plain listener failed deep inside Akka's start with a 147-line stack trace instead.
/// </remarks>
public static class RemotingPort
{
    // Linux's values; the check only runs there (elsewhere ReuseAddress does not imply port sharing).
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    public static void EnsureFree(string host, int port)
    {
        if (port == 0 || !OperatingSystem.IsLinux())
        {
            return;
        }

        IPAddress address;
        try
        {
            address = IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).FirstOrDefault() ?? IPAddress.Any;
        }
        catch (SocketException)
        {
            return; // a host that does not resolve fails in Akka's own start, which names it
        }

        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        // SO_REUSEADDR alone: a restarted node's port may still have its old connections in TIME_WAIT, which this
        // allows, but no other socket may be listening on it.
        socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
        try
        {
            socket.Bind(new IPEndPoint(address, port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new PortInUseException($"the Akka remoting port {host}:{port} (ActorHa:Port) is already in use by another process (another node still running?)");
        }
        catch (SocketException)
        {
            // Not an address of this host, say: Akka's own bind fails on it and names it.
        }
    }
}
