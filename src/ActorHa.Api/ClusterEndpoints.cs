using ActorHa.Cluster.Membership;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ActorHa.Api;

/// <summary>/v1/cluster and the health probes.</summary>
public static class ClusterEndpoints
{
    public static IEndpointRouteBuilder MapClusterApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1").WithTags("cluster")
            .MapGetAndHead("/cluster", async (ClusterView view, CancellationToken ct) => Results.Ok(await view.GetAsync(ct)))
            .WithName("GetCluster").WithSummary("Members with status and reachability, and each partition's owner.");

        var health = app.MapGroup("/healthz").WithTags("health");
        health.MapGetAndHead("/live", () => Results.Ok(new { status = "live" })).WithName("Live");
        health.MapGetAndHead("/ready", async (ClusterView view, CancellationToken ct) =>
        {
            var (ready, reason) = await view.ReadinessAsync(ct);
            return ready
                ? Results.Ok(new { status = "ready" })
                : Results.Problem(title: "Not ready", detail: reason, statusCode: StatusCodes.Status503ServiceUnavailable, type: "urn:actorha:problem:not-ready");
        }).WithName("Ready");
        return app;
    }
}
