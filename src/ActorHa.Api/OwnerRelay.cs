using ActorHa.Cluster;
using ActorHa.Cluster.Forwarding;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace ActorHa.Api;

/// <summary>
/// Moves values larger than <see cref="ActorHaSettings.RemoteValueLimitBytes"/> between nodes over HTTP instead of Akka
/// remoting, whose one connection per pair of nodes also carries the failure detector's heartbeats (README, "Large
/// values"). A read the owner answered with <see cref="Replies.FetchFromOwner"/> is fetched from the owner's API; a large
/// write for a partition another node runs is sent to that node's API. Either way the owner's answer is relayed as it
/// came. A relayed request carries <see cref="Header"/>, and the node that receives one never relays it again: a
/// partition that moved meanwhile costs a 503 and a retry (nothing written, for a write), not a chain of relays, and
/// the value never crosses remoting.
/// </summary>
public sealed class OwnerRelay(ActorHaSettings settings, PartitionClient partitions, LocalPartitions local, RemoteOwners owners) : IDisposable
{
    public const string Header = "ActorHa-Relay";

    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    })
    {
        Timeout = settings.RequestTimeout,
    };

    public static bool IsRelayed(HttpRequest request) => request.Headers.ContainsKey(Header);

    /// <summary>A read whose value the owner would not send over remoting: fetched from the owner's API.</summary>
    public async Task<IResult> FetchAsync(HttpRequest request, Replies.FetchFromOwner fetch, CancellationToken ct)
    {
        if (IsRelayed(request))
        {
            return Problems.Unavailable(new Replies.Unavailable($"the partition of '{fetch.Key}' moved while its {fetch.Length}-byte value was being fetched from its owner", TimeSpan.FromMilliseconds(200)));
        }

        var message = new HttpRequestMessage(HttpMethods.IsHead(request.Method) ? HttpMethod.Head : HttpMethod.Get, fetch.OwnerUrl + KvEndpoints.Location(fetch.Key));
        return await SendAsync(message, fetch.OwnerUrl, $"the value of '{fetch.Key}' ({fetch.Length} bytes) is fetched from its owner's API", ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Where a write of a value over <see cref="ActorHaSettings.RemoteValueLimitBytes"/> goes: to the owner's API when
    /// its partition runs on another node (null: it runs here, or its owner has no URL to offer, so the write is asked
    /// of the partition as usual), or a refusal that says nothing was written.
    /// </summary>
    public async Task<IResult?> RouteLargeWriteAsync(HttpRequest request, string key, byte[] value, CancellationToken ct)
    {
        var partition = partitions.Map.For(key);
        if (local.For(partition) is not null)
        {
            return null;
        }

        if (IsRelayed(request))
        {
            // Sent here as to the owner, but the partition has moved on: a relayed request is never relayed again,
            // and the value does not go over remoting either. Nothing is written; the client's retry finds the owner.
            return Problems.Unavailable(new Replies.Unavailable($"partition {partition} no longer runs on the node this {value.Length}-byte value was relayed to", TimeSpan.FromMilliseconds(200)), nothingWritten: true);
        }

        // An owner that has not announced itself yet (the partition just started or moved) is asked where it is, in a
        // few bytes, rather than sent the value: 200 clients writing 1 MiB values in the second after the cluster
        // became ready queued enough on remoting to get healthy members downed.
        var ownerUrl = owners.PeerUrlFor(partition);
        if (ownerUrl is null)
        {
            switch (await partitions.AskAsync(new Queries.Locate(key), ct).ConfigureAwait(false))
            {
                case Replies.Located located:
                    ownerUrl = located.OwnerUrl;
                    break;
                case Replies.Unavailable u:
                    return Problems.Unavailable(u with { Reason = $"{u.Reason} (while finding the node to send the value to)" }, nothingWritten: true);
                case Replies.Unrecoverable u:
                    return Problems.PartitionUnrecoverable(u);
                default:
                    return null;
            }
        }

        // Found here after all (it started on this node meanwhile), or the owner has no URL to offer: ask as usual.
        return ownerUrl is not null && local.For(partition) is null ? await PutAsync(request, ownerUrl, key, value, ct).ConfigureAwait(false) : null;
    }

    /// <summary>
    /// A large write for a partition another node runs, sent to that node's API with the client's preconditions and
    /// an Idempotency-Key (the client's, or one made here as the node makes one for every write), so that the owner
    /// applies it once however often it is retried.
    /// </summary>
    private async Task<IResult> PutAsync(HttpRequest request, string ownerUrl, string key, byte[] value, CancellationToken ct)
    {
        var message = new HttpRequestMessage(HttpMethod.Put, ownerUrl + KvEndpoints.Location(key)) { Content = new ByteArrayContent(value) };
        message.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");

        // As ActorHaClient sends large values: an owner that turns the write away does so before the value is sent.
        message.Headers.ExpectContinue = true;
        foreach (var name in new[] { HeaderNames.IfMatch, HeaderNames.IfNoneMatch })
        {
            if (request.Headers.TryGetValue(name, out var values))
            {
                message.Headers.TryAddWithoutValidation(name, values.ToString());
            }
        }

        message.Headers.TryAddWithoutValidation(KvEndpoints.IdempotencyKeyHeader,
            request.Headers.TryGetValue(KvEndpoints.IdempotencyKeyHeader, out var idempotencyKey) ? idempotencyKey.ToString() : "relay-" + Guid.NewGuid().ToString("N"));
        return await SendAsync(message, ownerUrl, $"the {value.Length}-byte value of '{key}' is written through its owner's API", ct).ConfigureAwait(false);
    }

    public void Dispose() => _http.Dispose();

    private async Task<IResult> SendAsync(HttpRequestMessage message, string ownerUrl, string what, CancellationToken ct)
    {
        using (message)
        {
            message.Headers.Add(Header, "1");
            try
            {
                return new Relayed(await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false));
            }
            // A bare SocketException is a connection reset right after connect, which SocketsHttpHandler lets through unwrapped.
            catch (Exception e) when (e is HttpRequestException or System.Net.Sockets.SocketException || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                return Problems.Unavailable(new Replies.Unavailable($"{what} at {ownerUrl}, which did not answer ({e.Message})", TimeSpan.FromSeconds(1)));
            }
        }
    }

    /// <summary>The owner's answer as it came: status, the headers a key's answer carries, and the body.</summary>
    private sealed class Relayed(HttpResponseMessage response) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            using (response)
            {
                var target = httpContext.Response;
                target.StatusCode = (int)response.StatusCode;
                Copy(response.Headers.ETag?.ToString(), v => target.Headers.ETag = v);
                Copy(response.Headers.RetryAfter?.ToString(), v => target.Headers.RetryAfter = v);
                Copy(response.Headers.Location?.OriginalString, v => target.Headers.Location = v);
                Copy(response.Content.Headers.ContentType?.ToString(), v => target.ContentType = v);
                Copy(response.Content.Headers.LastModified?.ToString("R"), v => target.Headers.LastModified = v);
                if (response.Content.Headers.ContentLength is { } length)
                {
                    target.ContentLength = length;
                }

                if (!HttpMethods.IsHead(httpContext.Request.Method))
                {
                    await using var body = await response.Content.ReadAsStreamAsync(httpContext.RequestAborted).ConfigureAwait(false);
                    await body.CopyToAsync(target.Body, httpContext.RequestAborted).ConfigureAwait(false);
                }
            }
        }

        private static void Copy(string? value, Action<string> set)
        {
            if (value is not null)
            {
                set(value);
            }
        }
    }
}
