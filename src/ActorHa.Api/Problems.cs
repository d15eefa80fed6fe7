using System.Globalization;
using ActorHa.Domain;
using Microsoft.AspNetCore.Http;

namespace ActorHa.Api;

/// <summary>
/// RFC 7807 problems with stable type URIs, one per failure a client can act on. The mapping from
/// partition replies to HTTP lives here and nowhere else.
/// </summary>
public static class Problems
{
    public const string InvalidKeyType = "urn:actorha:problem:invalid-key";
    public const string InvalidRequestType = "urn:actorha:problem:invalid-request";
    public const string ValueTooLargeType = "urn:actorha:problem:value-too-large";
    public const string VersionMismatchType = "urn:actorha:problem:version-mismatch";
    public const string NotFoundType = "urn:actorha:problem:not-found";
    public const string UnavailableType = "urn:actorha:problem:unavailable";
    public const string IdempotencyKeyReusedType = "urn:actorha:problem:idempotency-key-reused";
    public const string NoSuchRouteType = "urn:actorha:problem:no-such-route";
    public const string MethodNotAllowedType = "urn:actorha:problem:method-not-allowed";
    public const string InternalErrorType = "urn:actorha:problem:internal-error";
    public const string OverloadedType = "urn:actorha:problem:overloaded";
    public const string PartitionUnrecoverableType = "urn:actorha:problem:partition-unrecoverable";

    /// <summary>
    /// The type of a problem the framework raised without one: a status code page (no route, wrong method) or
    /// the exception handler (a request Kestrel could not read, a bug).
    /// </summary>
    public static string TypeFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest => InvalidRequestType,
        StatusCodes.Status404NotFound => NoSuchRouteType,
        StatusCodes.Status405MethodNotAllowed => MethodNotAllowedType,
        StatusCodes.Status500InternalServerError => InternalErrorType,
        _ => "about:blank",
    };

    public static IResult InvalidKey(string reason) =>
        Results.Problem(title: "Invalid key", detail: reason, statusCode: StatusCodes.Status400BadRequest, type: InvalidKeyType);

    public static IResult InvalidRequest(string detail) =>
        Results.Problem(title: "Invalid request", detail: detail, statusCode: StatusCodes.Status400BadRequest, type: InvalidRequestType);

    public static IResult ValueTooLarge(int maxBytes) =>
        Results.Problem(title: "Value too large", detail: $"Values are limited to {maxBytes} bytes.", statusCode: StatusCodes.Status413PayloadTooLarge, type: ValueTooLargeType,
            extensions: new Dictionary<string, object?> { ["maxBytes"] = maxBytes });

    public static IResult NotFound(string key) =>
        Results.Problem(title: "Key not found", detail: $"The key '{key}' does not exist.", statusCode: StatusCodes.Status404NotFound, type: NotFoundType,
            extensions: new Dictionary<string, object?> { ["key"] = key });

    public static IResult VersionMismatch(Replies.VersionMismatch m) =>
        Results.Problem(
            title: "Version mismatch",
            detail: m.CurrentVersion == 0
                ? $"The key '{m.Key}' does not exist, but version {m.ExpectedVersion} was expected."
                : $"The key '{m.Key}' is at version {m.CurrentVersion}, but {(m.ExpectedVersion == 0 ? "absence" : $"version {m.ExpectedVersion}")} was expected.",
            statusCode: StatusCodes.Status412PreconditionFailed,
            type: VersionMismatchType,
            extensions: new Dictionary<string, object?> { ["key"] = m.Key, ["expectedVersion"] = m.ExpectedVersion, ["currentVersion"] = m.CurrentVersion });

    public static IResult IdempotencyKeyReused(Replies.IdempotencyConflict c) =>
        Results.Problem(
            title: "Idempotency-Key reused",
            detail: "This Idempotency-Key was first used for a different request (another value, operation or key); nothing was applied. Use a new Idempotency-Key for a new request.",
            statusCode: StatusCodes.Status422UnprocessableEntity,
            type: IdempotencyKeyReusedType,
            extensions: new Dictionary<string, object?> { ["key"] = c.Key });

    /// <param name="nothingWritten">The request was refused before anything was sent to the partition, so the outcome is known.</param>
    public static IResult Unavailable(Replies.Unavailable u, bool nothingWritten = false) => new RetryAfterResult(
        Results.Problem(title: "Partition unavailable", detail: nothingWritten
                ? $"{u.Reason}. Nothing was written; retry later."
                : $"{u.Reason}. Retry later; a write's outcome is unknown until read back.",
            statusCode: StatusCodes.Status503ServiceUnavailable, type: UnavailableType),
        u.RetryAfter);

    /// <summary>
    /// The partition cannot be rebuilt from the store, so nothing was read or written: unlike <see cref="Unavailable"/>,
    /// the outcome is known, and retrying at once cannot help. Retry-After is when the node tries the recovery again.
    /// </summary>
    public static IResult PartitionUnrecoverable(Replies.Unrecoverable u) => new RetryAfterResult(
        Results.Problem(
            title: "Partition cannot be recovered",
            detail: $"Partition {u.Partition} cannot be recovered from the store: {u.Reason}. Nothing was read or written. " +
                "The node tries the recovery again periodically; if the store is damaged, restore it from a backup (docs/production.md).",
            statusCode: StatusCodes.Status503ServiceUnavailable,
            type: PartitionUnrecoverableType,
            extensions: new Dictionary<string, object?> { ["partition"] = u.Partition.Value }),
        u.RetryAfter);

    /// <summary>Turned away before anything was read or sent: nothing was applied, and the same request may be sent again.</summary>
    public static IResult Overloaded(string detail) => new RetryAfterResult(
        Results.Problem(title: "Node overloaded", detail: $"{detail}. Nothing was applied; retry later or on another node.",
            statusCode: StatusCodes.Status503ServiceUnavailable, type: OverloadedType),
        TimeSpan.FromSeconds(1));

    /// <summary>Adds Retry-After (whole seconds, at least 1) to an inner result.</summary>
    private sealed class RetryAfterResult(IResult inner, TimeSpan retryAfter) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
