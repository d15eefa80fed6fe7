using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ActorHa.Api;

/// <summary>
/// Every problem the node writes (endpoint results, status code pages for unknown routes and methods, the
/// exception handler) is application/problem+json whatever the request's Accept says. ASP.NET Core's own
/// writer declines when Accept excludes JSON, and then a 404 or 405 becomes "Status Code: 404; Not Found" in
/// text/plain and a bad request body an empty 400; a client reads the type, not a negotiated format.
/// </summary>
public static class ProblemJson
{
    public static IServiceCollection AddActorHaProblems(this IServiceCollection services)
    {
        // Registered before AddProblemDetails adds the default writer: the service asks writers in order.
        services.AddSingleton<IProblemDetailsWriter, Writer>();
        return services.AddProblemDetails();
    }

    private sealed class Writer(IOptions<JsonOptions> json) : IProblemDetailsWriter
    {
        public bool CanWrite(ProblemDetailsContext context) => true;

        public ValueTask WriteAsync(ProblemDetailsContext context)
        {
            var http = context.HttpContext;
            var problem = context.ProblemDetails;
            problem.Status ??= http.Response.StatusCode;
            problem.Type ??= Problems.TypeFor(problem.Status.Value);
            problem.Title ??= ReasonPhrases.GetReasonPhrase(problem.Status.Value);
            problem.Extensions.TryAdd("traceId", Activity.Current?.Id ?? http.TraceIdentifier);
            return new ValueTask(http.Response.WriteAsJsonAsync(problem, json.Value.SerializerOptions, "application/problem+json", http.RequestAborted));
        }
    }
}
