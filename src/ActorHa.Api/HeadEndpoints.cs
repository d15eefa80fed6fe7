using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ActorHa.Api;

/// <summary>
/// HEAD wherever GET is served (RFC 9110 §9.3.2): the same handler, so the same status and headers (ETag,
/// Content-Length of a value); Kestrel discards the body of a response to HEAD.
/// </summary>
public static class HeadEndpoints
{
    private static readonly string[] GetAndHead = [HttpMethods.Get, HttpMethods.Head];

    public static RouteHandlerBuilder MapGetAndHead(this IEndpointRouteBuilder app, string pattern, Delegate handler) =>
        app.MapMethods(pattern, GetAndHead, handler);
}
