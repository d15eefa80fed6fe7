using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using ActorHa.Domain;

namespace ActorHa.Client;

public sealed record KeyVersion(string Key, long Version);

public sealed record KeyList(IReadOnlyList<KeyVersion> Keys, string? Next);

/// <summary>An RFC 7807 problem as the API returns it; Extensions holds currentVersion and friends.</summary>
public sealed class Problem
{
    public string? Type { get; set; }

    public string? Title { get; set; }

    public int? Status { get; set; }

    public string? Detail { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement> Extensions { get; set; } = [];

    public long? CurrentVersion() => Extensions.TryGetValue("currentVersion", out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
}

/// <summary>The outcome of one call: the HTTP status and either a result or a problem.</summary>
public sealed record Outcome<T>(HttpStatusCode Status, T? Value, Problem? Problem, long? Version)
{
    public bool IsSuccess => (int)Status is >= 200 and < 300;
}

public sealed record ValueRead(byte[] Value, long Version);

/// <summary>
/// Typed client for a node's /v1 API, shared by the CLI, the launcher, benchmarks and specs so that
/// all of them speak to ActorHa exactly as users do.
/// </summary>
public sealed class ActorHaClient(HttpClient http)
{
    private const string InvalidKeyType = "urn:actorha:problem:invalid-key";

    /// <summary>A 503 that no other node and no quick retry can change: the partition cannot be recovered from the store.</summary>
    public const string PartitionUnrecoverableType = "urn:actorha:problem:partition-unrecoverable";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    // A failover takes about a second and a half; polling five times a second finds the moved partition promptly.
    internal static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Values this large are sent with "Expect: 100-continue": the node answers a write it turns away (503 overloaded,
    /// 413, a bad precondition header) before the value is sent. Without it, a node that refuses hundreds of 1 MiB
    /// uploads at once has to read and drop each value, and one it cannot drop within Kestrel's 5 s drain timeout
    /// has its connection closed under the client ("Broken pipe" instead of the 503). It costs one round trip.
    /// </summary>
    public const int ExpectContinueFromBytes = 64 * 1024;

    public Uri? BaseAddress => http.BaseAddress;

    public static ActorHaClient For(string url, TimeSpan? timeout = null) =>
        new(NodeHttp.Create(timeout ?? TimeSpan.FromSeconds(30), url));

    /// <summary>
    /// The key's URL path relative to a node ("v1/kv/" + the key, each segment percent-escaped as UTF-8): the
    /// node decodes it exactly once, so '/' separates segments and every other character round-trips.
    /// </summary>
    /// <exception cref="ArgumentException">The key has a "." or ".." segment, which Uri would silently remove.</exception>
    public static string KeyPath(string key) => Keys.HasDotSegment(key)
        ? throw new ArgumentException(Keys.Validate(key), nameof(key))
        : "v1/kv/" + Keys.Escape(key);

    /// <summary>expectedVersion: null = unconditional, 0 = create only (If-None-Match: *), n = If-Match: "n".</summary>
    /// <param name="idempotencyKey">Sent as Idempotency-Key: the partition answers a repeat of it with the first outcome instead of writing again.</param>
    public async Task<Outcome<KeyVersion>> PutAsync(string key, byte[] value, long? expectedVersion = null, CancellationToken ct = default, string? idempotencyKey = null)
    {
        if (InvalidKey<KeyVersion>(key) is { } refused)
        {
            return refused;
        }

        using var request = new HttpRequestMessage(HttpMethod.Put, KeyPath(key)) { Content = new ByteArrayContent(value) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (value.Length >= ExpectContinueFromBytes)
        {
            request.Headers.ExpectContinue = true;
        }

        AddPrecondition(request, expectedVersion);
        AddIdempotencyKey(request, idempotencyKey);
        using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
        return await ReadJsonAsync<KeyVersion>(response, ct).ConfigureAwait(false);
    }

    public async Task<Outcome<ValueRead>> GetAsync(string key, CancellationToken ct = default)
    {
        if (InvalidKey<ValueRead>(key) is { } refused)
        {
            return refused;
        }

        using var response = await http.GetAsync(KeyPath(key), ct).ConfigureAwait(false);
        var version = ParseETag(response);
        if (!response.IsSuccessStatusCode)
        {
            return new(response.StatusCode, null, await ReadProblemAsync(response, ct).ConfigureAwait(false), version);
        }

        var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        return new(response.StatusCode, new ValueRead(bytes, version ?? 0), null, version);
    }

    public async Task<Outcome<KeyVersion>> DeleteAsync(string key, long? expectedVersion = null, CancellationToken ct = default, string? idempotencyKey = null)
    {
        if (InvalidKey<KeyVersion>(key) is { } refused)
        {
            return refused;
        }

        using var request = new HttpRequestMessage(HttpMethod.Delete, KeyPath(key));
        AddPrecondition(request, expectedVersion);
        AddIdempotencyKey(request, idempotencyKey);
        using var response = await http.SendAsync(request, ct).ConfigureAwait(false);
        return await ReadJsonAsync<KeyVersion>(response, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a write until it gets an answer other than 503, or until <paramref name="retryFor"/> has passed: while a
    /// partition moves after a failure, its node answers 503 or drops the connection, and a moment later the
    /// partition serves again. Every attempt carries the same <paramref name="idempotencyKey"/>, so a write that was
    /// applied before its answer was lost is answered with its first outcome instead of being applied twice.
    /// </summary>
    public static async Task<Outcome<KeyVersion>> RetryingWriteAsync(
        Func<CancellationToken, Task<Outcome<KeyVersion>>> send, TimeSpan retryFor, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var left = retryFor - Stopwatch.GetElapsedTime(started);
            try
            {
                var outcome = await send(ct).ConfigureAwait(false);
                if (outcome.Status != HttpStatusCode.ServiceUnavailable || left <= TimeSpan.Zero)
                {
                    return outcome;
                }
            }
            catch (HttpRequestException) when (left > TimeSpan.Zero)
            {
                // Connection refused or reset: the node is down or restarting; another attempt may reach it.
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested && left > TimeSpan.Zero)
            {
                // The HTTP timeout, not the caller: the outcome is unknown, which the idempotency key makes safe to retry.
            }

            // Only reached with time left: an answer or failure past the window has returned or thrown above.
            await Task.Delay(left < RetryDelay ? left : RetryDelay, ct).ConfigureAwait(false);
        }
    }

    public async Task<Outcome<KeyList>> ListAsync(string? prefix = null, int? limit = null, string? after = null, CancellationToken ct = default)
    {
        var query = new List<string>();
        if (prefix is not null)
        {
            query.Add("prefix=" + Uri.EscapeDataString(prefix));
        }

        if (limit is not null)
        {
            query.Add("limit=" + limit.Value.ToString(CultureInfo.InvariantCulture));
        }

        if (after is not null)
        {
            query.Add("after=" + Uri.EscapeDataString(after));
        }

        using var response = await http.GetAsync("v1/kv" + (query.Count > 0 ? "?" + string.Join('&', query) : ""), ct).ConfigureAwait(false);
        return await ReadJsonAsync<KeyList>(response, ct).ConfigureAwait(false);
    }

    public async Task<JsonDocument> ClusterAsync(CancellationToken ct = default)
    {
        using var response = await http.GetAsync("v1/cluster", ct).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        return await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false);
    }

    public async Task<bool> IsReadyAsync(CancellationToken ct = default)
    {
        try
        {
            using var response = await http.GetAsync("healthz/ready", ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// A key every node would refuse is answered here with the node's 400 problem, without a request: a key with
    /// a "." or ".." segment could not even be sent (Uri removes those segments, so another key would be hit).
    /// </summary>
    private static Outcome<T>? InvalidKey<T>(string key) => Keys.Validate(key) is { } reason
        ? new(HttpStatusCode.BadRequest, default, new Problem { Type = InvalidKeyType, Title = "Invalid key", Status = 400, Detail = reason }, null)
        : null;

    private static void AddIdempotencyKey(HttpRequestMessage request, string? idempotencyKey)
    {
        // Checked here, before sending: HttpClient refuses a non-ASCII header only after it has connected.
        IdempotencyKeys.ThrowIfInvalid(idempotencyKey);
        if (idempotencyKey is not null)
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
        }
    }

    private static void AddPrecondition(HttpRequestMessage request, long? expectedVersion)
    {
        if (expectedVersion == 0)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", "*");
        }
        else if (expectedVersion is { } v)
        {
            request.Headers.TryAddWithoutValidation("If-Match", $"\"{v.ToString(CultureInfo.InvariantCulture)}\"");
        }
    }

    private static long? ParseETag(HttpResponseMessage response) =>
        response.Headers.ETag is { } etag && long.TryParse(etag.Tag.Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    private static async Task<Outcome<T>> ReadJsonAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        var version = ParseETag(response);
        if (response.IsSuccessStatusCode)
        {
            return new(response.StatusCode, await response.Content.ReadFromJsonAsync<T>(Json, ct).ConfigureAwait(false), null, version);
        }

        return new(response.StatusCode, default, await ReadProblemAsync(response, ct).ConfigureAwait(false), version);
    }

    private static async Task<Problem?> ReadProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return null;
        }

        return await response.Content.ReadFromJsonAsync<Problem>(Json, ct).ConfigureAwait(false);
    }
}
