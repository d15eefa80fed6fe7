using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Akka.Remote;
using Akka.Remote.Transport;

namespace ActorHa.Cluster.Testing;

/// <summary>
/// A real network cut between this node and a peer, for multi-node specs and chaos runs: Akka.Remote's
/// throttler adapter (the mechanism of Akka's own TestConductor) drops every message in both directions on
/// the connection to that peer, heartbeats included, while the peer's process, its HTTP API and the database
/// stay reachable. Exists only on nodes started with ActorHa:FaultInjection=true.
/// </summary>
public sealed class NetworkFaults(IServiceProvider services)
{
    /// <summary>The throttler adapter on the TCP transport; it changes every address's scheme to akka.trttl.tcp.</summary>
    public const string Hocon = "akka.remote.dot-netty.tcp.applied-adapters = [trttl]";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(3);
    private readonly object _gate = new();
    private readonly HashSet<(string Host, int Port)> _cut = [];

    /// <summary>Peers currently cut off from this node, as "host:port".</summary>
    public IReadOnlyList<string> Blackholed
    {
        get
        {
            lock (_gate)
            {
                return _cut.Select(p => $"{p.Host}:{p.Port}").Order(StringComparer.Ordinal).ToList();
            }
        }
    }

    public Task BlackholeAsync(string host, int port) => SetAsync(host, port, Blackhole.Instance, cut: true);

    public Task HealAsync(string host, int port) => SetAsync(host, port, Unthrottled.Instance, cut: false);

    public async Task HealAllAsync()
    {
        List<(string Host, int Port)> cut;
        lock (_gate)
        {
            cut = [.. _cut];
        }

        foreach (var (host, port) in cut)
        {
            await HealAsync(host, port).ConfigureAwait(false);
        }
    }

    private async Task SetAsync(string host, int port, ThrottleMode mode, bool cut)
    {
        // Resolved per call: the actor system starts after the HTTP endpoints are mapped.
        var system = services.GetRequiredService<ActorSystem>();
        var transport = ((IRemoteActorRefProvider)((ExtendedActorSystem)system).Provider).Transport;
        // The throttler matches peers by host and port only (scheme and system name are stripped).
        var peer = new Address("akka.trttl.tcp", system.Name, host, port);
        // Remoting answers within milliseconds unless it is shutting down (this node was just downed) or has
        // shut down; then there is nothing left to cut, and the caller should not wait for Akka's 30 s ask timeout.
        bool applied;
        try
        {
            applied = await transport.ManagementCommand(new SetThrottle(peer, ThrottleTransportAdapter.Direction.Both, mode))
                .WaitAsync(CommandTimeout).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or RemoteTransportException)
        {
            throw new RemotingUnavailableException(e);
        }

        if (!applied)
        {
            throw new InvalidOperationException("The remoting transport has no throttler adapter; start the node with ActorHa:FaultInjection=true.");
        }

        lock (_gate)
        {
            if (cut)
            {
                _cut.Add((host, port));
            }
            else
            {
                _cut.Remove((host, port));
            }
        }
    }
}

public static class NetworkFaultsSetup
{
    public static IServiceCollection AddNetworkFaults(this IServiceCollection services, ActorHaSettings settings)
    {
        if (settings.FaultInjection)
        {
            services.AddSingleton<NetworkFaults>();
        }

        return services;
    }
}

/// <summary>Remoting cannot take a fault command: it is shutting down or has shut down (the node was downed).</summary>
public sealed class RemotingUnavailableException(Exception inner) : Exception("Akka remoting is not running or did not take the command in time; the node is probably shutting down.", inner);
