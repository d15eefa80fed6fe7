using System.Buffers;
using System.Globalization;
using ActorHa.Cluster;
using ActorHa.Domain;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace ActorHa.Api;

public sealed record KeyVersionResponse(string Key, long Version);

public sealed record KeyListResponse(IReadOnlyList<KeyVersionResponse> Keys, string? Next);

/// <summary>/v1/kv: the key/value API. Handlers only translate HTTP to partition messages and back.</summary>
public static class KvEndpoints
{
    public const int DefaultListLimit = 100;
    public const int MaxListLimit = 1000;

    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapKvApi(this IEndpointRouteBuilder app)
    {
        // The {**key} parameter only matches the routes: handlers read the key from the raw target (RequestKey).
        var kv = app.MapGroup("/v1/kv").WithTags("kv");
        kv.MapPut("/{**key}", PutAsync).WithName("PutKey").WithSummary("Write a value; If-Match for compare-and-set, If-None-Match: * to create only.");
        // One GET route: the catch-all also matches /v1/kv and /v1/kv/, which list keys. HEAD answers the same
        // status and headers (Kestrel drops the body).
        kv.MapGetAndHead("/{**key}", GetOrListAsync).WithName("GetKey").WithSummary("Read a value and its version (ETag); without a key, list keys (?prefix=&limit=&after=).");
        kv.MapDelete("/{**key}", DeleteAsync).WithName("DeleteKey").WithSummary("Delete a key; If-Match for compare-and-delete.");
        return app;
    }

    /// <summary>The key the client addressed, as a link it can follow: the same escaping as ActorHaClient.KeyPath.</summary>
    public static string Location(string key) => "/v1/kv/" + Keys.Escape(key);

    private static async Task<IResult> PutAsync(HttpRequest request, PartitionClient partitions, ActorHaSettings settings, Admission admission, OwnerRelay relay, CancellationToken ct)
    {
        if (KeyOf(request, out var key) is { } invalidKey)
        {
            return invalidKey;
        }

        if (!TryReadPrecondition(request, allowCreateOnly: true, out var expected, out var preconditionError))
        {
            return Problems.InvalidRequest(preconditionError);
        }

        if (!TryReadRequestId(request, out var requestId, out var idError))
        {
            return Problems.InvalidRequest(idError);
        }

        // Reserved before the body is read: a declared length over the limit is refused by ReadBodyAsync, and a
        // chunked body may be as large as the limit.
        var reserved = request.ContentLength is { } length && length <= settings.MaxValueBytes ? Math.Max(length, 1) : settings.MaxValueBytes;
        if (!admission.TryReserveWrite(reserved))
        {
            return Problems.Overloaded($"this node is taking in {settings.MaxInFlightWriteBytes / (1024 * 1024)} MiB of values already (MaxInFlightWriteBytes)");
        }

        try
        {
            var value = await ReadBodyAsync(request, settings.MaxValueBytes, ct);
            if (value is null)
            {
                return Problems.ValueTooLarge(settings.MaxValueBytes);
            }

            // A large value for a partition another node runs goes to that node over HTTP, not over remoting.
            if (value.Length > settings.RemoteValueLimitBytes && await relay.RouteLargeWriteAsync(request, key, value, ct) is { } routed)
            {
                return routed;
            }

            return await partitions.AskAsync(new Commands.Put(key, value, expected, requestId), ct) switch
            {
                Replies.Written w => WithETag(w.Version, w.Created
                    ? Results.Created(Location(w.Key), new KeyVersionResponse(w.Key, w.Version))
                    : Results.Ok(new KeyVersionResponse(w.Key, w.Version))),
                var other => Failure(key, other),
            };
        }
        finally
        {
            admission.ReleaseWrite(reserved);
        }
    }

    private static Task<IResult> GetOrListAsync(HttpRequest request, PartitionClient partitions, Admission admission, OwnerRelay relay, CancellationToken ct)
    {
        if (!RequestKey.TryRead(request, out var key, out var problem))
        {
            return Task.FromResult(Problems.InvalidKey(problem!));
        }

        return key.Length == 0
            ? ListAsync(partitions, admission, request.Query["prefix"], request.Query["limit"], request.Query["after"], ct)
            : GetAsync(request, key, partitions, relay, ct);
    }

    private static async Task<IResult> GetAsync(HttpRequest request, string key, PartitionClient partitions, OwnerRelay relay, CancellationToken ct)
    {
        if (Keys.Validate(key) is { } problem)
        {
            return Problems.InvalidKey(problem);
        }

        return await partitions.AskAsync(new Queries.Get(key), ct) switch
        {
            Replies.Found f => WithETag(f.Version, new ValueResult(f)),
            Replies.FetchFromOwner large => await relay.FetchAsync(request, large, ct),
            var other => Failure(key, other),
        };
    }

    private static async Task<IResult> DeleteAsync(HttpRequest request, PartitionClient partitions, CancellationToken ct)
    {
        if (KeyOf(request, out var key) is { } invalidKey)
        {
            return invalidKey;
        }

        if (!TryReadPrecondition(request, allowCreateOnly: false, out var expected, out var preconditionError))
        {
            return Problems.InvalidRequest(preconditionError);
        }

        if (!TryReadRequestId(request, out var requestId, out var idError))
        {
            return Problems.InvalidRequest(idError);
        }

        return await partitions.AskAsync(new Commands.Delete(key, expected, requestId), ct) switch
        {
            Replies.Deleted d => WithETag(d.Version, Results.Ok(new KeyVersionResponse(d.Key, d.Version))),
            var other => Failure(key, other),
        };
    }

    /// <summary>The request's key, or the 400 problem when the target names no valid key.</summary>
    private static IResult? KeyOf(HttpRequest request, out string key) =>
        !RequestKey.TryRead(request, out key, out var problem) ? Problems.InvalidKey(problem!)
        : Keys.Validate(key) is { } invalid ? Problems.InvalidKey(invalid)
        : null;

    private static async Task<IResult> ListAsync(PartitionClient partitions, Admission admission, string? prefix, string? limit, string? after, CancellationToken ct)
    {
        var take = DefaultListLimit;
        if (limit is not null && (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out take) || take is < 1 or > MaxListLimit))
        {
            return Problems.InvalidRequest($"limit must be an integer between 1 and {MaxListLimit}.");
        }

        if (!admission.TryEnterList())
        {
            return Problems.Overloaded("this node is running as many key listings as it takes at once (MaxConcurrentLists)");
        }

        try
        {
            // One key more than the page: only if it exists is there a next page to point to.
            return await partitions.ListAsync(prefix ?? "", string.IsNullOrEmpty(after) ? null : after, take + 1, ct) switch
            {
                Replies.KeyPage page => Results.Ok(new KeyListResponse(
                    page.Keys.Take(take).Select(k => new KeyVersionResponse(k.Key, k.Version)).ToList(),
                    page.Keys.Count > take ? page.Keys[take - 1].Key : null)),
                var other => Failure("", other),
            };
        }
        finally
        {
            admission.ExitList();
        }
    }

    private static IResult Failure(string key, IPartitionReply reply) => reply switch
    {
        Replies.NotFound => Problems.NotFound(key),
        Replies.VersionMismatch m => Problems.VersionMismatch(m),
        Replies.InvalidKey k => Problems.InvalidKey(k.Reason),
        Replies.IdempotencyConflict c => Problems.IdempotencyKeyReused(c),
        Replies.Unavailable u => Problems.Unavailable(u),
        Replies.Unrecoverable u => Problems.PartitionUnrecoverable(u),
        _ => Problems.Unavailable(new Replies.Unavailable($"unexpected reply {reply.GetType().Name}", TimeSpan.FromSeconds(1))),
    };

    /// <summary>
    /// If-Match: "n" → expect version n; If-None-Match: * → create only (expected 0). A header that is present
    /// but empty is malformed, not absent: ignoring it would turn a conditional write into an unconditional one.
    /// </summary>
    private static bool TryReadPrecondition(HttpRequest request, bool allowCreateOnly, out long? expected, out string error)
    {
        expected = null;
        error = "";
        var hasIfMatch = request.Headers.TryGetValue(HeaderNames.IfMatch, out var ifMatchValues);
        var hasIfNoneMatch = request.Headers.TryGetValue(HeaderNames.IfNoneMatch, out var ifNoneMatchValues);
        if (hasIfMatch && hasIfNoneMatch)
        {
            error = "Send either If-Match or If-None-Match, not both.";
            return false;
        }

        if (hasIfNoneMatch)
        {
            if (!allowCreateOnly || ifNoneMatchValues.ToString().Trim() != "*")
            {
                error = allowCreateOnly ? "If-None-Match supports only '*' (create only)." : "If-None-Match is not supported here.";
                return false;
            }

            expected = 0;
            return true;
        }

        if (!hasIfMatch)
        {
            return true;
        }

        var ifMatch = ifMatchValues.ToString();
        var text = ifMatch.Trim();
        if (text.Length >= 2 && text[0] == '"' && text[^1] == '"')
        {
            text = text[1..^1];
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1)
        {
            error = ifMatch.Trim().Length == 0
                ? "If-Match is empty; send a version ETag such as \"3\", or no If-Match for an unconditional write."
                : $"If-Match must be a version ETag such as \"3\", not {ifMatch}.";
            return false;
        }

        expected = version;
        return true;
    }

    /// <summary>
    /// Idempotency-Key: a client's id for one logical write; sending the same key again (after a timeout or a
    /// 503) returns the first outcome instead of writing twice. One to 128 printable ASCII characters; two
    /// different strings are always two different keys.
    /// </summary>
    private static bool TryReadRequestId(HttpRequest request, out Guid? requestId, out string error)
    {
        requestId = null;
        error = "";
        if (!request.Headers.TryGetValue(IdempotencyKeyHeader, out var values))
        {
            return true;
        }

        var key = values.ToString();
        if (values.Count > 1)
        {
            error = "Send one Idempotency-Key header, not several.";
            return false;
        }

        // The clients' rule (they check it before sending), so both ends agree on what a key is.
        if (IdempotencyKeys.Validate(key) is { } problem)
        {
            error = $"Idempotency-Key {problem}";
            return false;
        }

        // Only a GUID in its canonical form ("D", lowercase) is its own id: that keeps the ids of clients that
        // already send such keys (the CLI does) as they were. Every other string is hashed, so {…}, upper-case
        // and dash-free spellings of one GUID are different keys, as they are different strings.
        requestId = key.Length == 36 && !key.AsSpan().ContainsAnyInRange('A', 'F') && Guid.TryParseExact(key, "D", out var guid)
            ? guid
            : new Guid(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("actorha-idempotency:" + key)).AsSpan(0, 16));
        return true;
    }

    /// <summary>Reads at most maxBytes; null when the body is larger (checked before reading when Content-Length says so).</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int maxBytes, CancellationToken ct)
    {
        if (request.ContentLength is { } length)
        {
            if (length > maxBytes)
            {
                return null;
            }

            // The usual case: read straight into an array of the declared size. (A 16 KB chunk per request was
            // the largest allocation of a write: ~16 MB/s per node under load.) Kestrel itself refuses a body
            // that is shorter or longer than its Content-Length.
            var value = new byte[length];
            var filled = 0;
            int read;
            while (filled < value.Length && (read = await request.Body.ReadAsync(value.AsMemory(filled), ct)) > 0)
            {
                filled += read;
            }

            return filled == value.Length ? value : value[..filled];
        }

        // Chunked: no length to trust, so read through a pooled chunk and stop past the limit.
        using var buffer = new MemoryStream(256);
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    return null;
                }

                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }

        return buffer.ToArray();
    }

    private static IResult WithETag(long version, IResult inner) => new ETagResult(version, inner);

    private sealed class ETagResult(long version, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.ETag = $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";
            return inner.ExecuteAsync(httpContext);
        }
    }

    private sealed class ValueResult(Replies.Found found) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status200OK;
            httpContext.Response.ContentType = "application/octet-stream";
            httpContext.Response.Headers.LastModified = found.UpdatedAt.ToString("R", CultureInfo.InvariantCulture);
            httpContext.Response.ContentLength = found.Value.Length;
            return httpContext.Response.Body.WriteAsync(found.Value, httpContext.RequestAborted).AsTask();
        }
    }
}
