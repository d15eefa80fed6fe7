using ActorHa.Cluster;
using ActorHa.Cluster.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ActorHa.Api;

/// <summary>
/// /v1/faults: the test-only control endpoint through which the multi-node harness and `actorha chaos` cut
/// and heal the network between nodes. Mapped only when the node runs with ActorHa:FaultInjection=true.
/// </summary>
public static class FaultEndpoints
{
    public static IEndpointRouteBuilder MapFaultApi(this IEndpointRouteBuilder app)
    {
        if (app.ServiceProvider.GetService<NetworkFaults>() is null)
        {
            return app;
        }

        var group = app.MapGroup("/v1/faults/network").WithTags("faults");
        group.MapGetAndHead("/", (NetworkFaults faults) => Results.Ok(new { blackholed = faults.Blackholed }))
            .WithName("GetNetworkFaults").WithSummary("Peers this node is cut off from.");
        group.MapPut("/{peer}", async (string peer, NetworkFaults faults) =>
        {
            if (!ActorHaSettings.TryParseHostPort(peer, out var host, out var port))
            {
                return BadPeer(peer);
            }

            return await Apply(() => faults.BlackholeAsync(host, port));
        }).WithName("Blackhole").WithSummary("Drops all remoting traffic between this node and the peer host:port, both ways.");
        group.MapDelete("/{peer}", async (string peer, NetworkFaults faults) =>
        {
            if (!ActorHaSettings.TryParseHostPort(peer, out var host, out var port))
            {
                return BadPeer(peer);
            }

            return await Apply(() => faults.HealAsync(host, port));
        }).WithName("HealPeer").WithSummary("Restores remoting traffic to the peer host:port.");
        group.MapDelete("/", async (NetworkFaults faults) =>
        {
            return await Apply(faults.HealAllAsync);
        }).WithName("HealAll").WithSummary("Restores remoting traffic to every peer.");
        return app;
    }

    private static async Task<IResult> Apply(Func<Task> change)
    {
        try
        {
            await change();
            return Results.NoContent();
        }
        catch (RemotingUnavailableException)
        {
            return Results.Problem(
                title: "Remoting unavailable",
                detail: "Akka remoting did not take the command in time; the node is probably shutting down.",
                statusCode: StatusCodes.Status503ServiceUnavailable,
                type: "urn:actorha:problem:remoting-unavailable");
        }
    }

    private static IResult BadPeer(string peer) => Results.Problem(
        title: "Invalid peer",
        detail: $"'{peer}' is not host:port.",
        statusCode: StatusCodes.Status400BadRequest,
        type: "urn:actorha:problem:invalid-peer");
}
