using System.Net.Sockets;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Hosting;
using Akka.Remote;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Downs a member at once when its process is provably gone. A killed process's TCP connections are reset
/// by its kernel, so Akka.Remote sees the association drop within milliseconds; if the peer's remoting port
/// then refuses a connection, nothing listens there any more: the process died (a frozen or cut-off process
/// still has its port open, or does not answer at all, and is left to the failure detector and the
/// split-brain resolver). Downing a dead member needs no waiting. Safety never depends on this: partitions
/// move only under the ownership lease.
/// </summary>
public sealed class CrashDetector : ReceiveActor
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(500);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);
    private readonly HashSet<Address> _probing = [];

    public CrashDetector()
    {
        Receive<DisassociatedEvent>(e => Probe(e.RemoteAddress));
        Receive<AssociationErrorEvent>(e => Probe(e.RemoteAddress));
        Receive<ProbeResult>(result =>
        {
            _probing.Remove(result.Address);
            if (!result.Refused)
            {
                return;
            }

            var member = _cluster.State.Members.FirstOrDefault(m => m.Address.Equals(result.Address));
            if (member is { Status: MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining or MemberStatus.Leaving })
            {
                _log.Warning("Member {0} refuses connections on its remoting port: its process is gone. Downing it now.", result.Address);
                _cluster.Down(result.Address);
            }
        });
    }

    protected override void PreStart()
    {
        Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));
        Context.System.EventStream.Subscribe(Self, typeof(AssociationErrorEvent));
    }

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private void Probe(Address address)
    {
        if (address.Equals(_cluster.SelfAddress) || address.Host is null || address.Port is null || !_probing.Add(address))
        {
            return;
        }

        var (host, port) = (address.Host, address.Port.Value);
        RefusesConnections(host, port).PipeTo(Self, success: refused => new ProbeResult(address, refused), failure: _ => new ProbeResult(address, false));
    }

    private static async Task<bool> RefusesConnections(string host, int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(ProbeTimeout);
        try
        {
            await client.ConnectAsync(host, port, timeout.Token).ConfigureAwait(false);
            return false;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private sealed record ProbeResult(Address Address, bool Refused);
}

public static class CrashDetectorSetup
{
    public static AkkaConfigurationBuilder WithCrashDetector(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _) => system.ActorOf(Props.Create(() => new CrashDetector()), "crash-detector"));
}
