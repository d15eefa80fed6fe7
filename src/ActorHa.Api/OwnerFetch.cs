using System.Net.Http.Headers;
using ActorHa.Cluster;
using ActorHa.Domain;
using Microsoft.AspNetCore.Http;

namespace ActorHa.Api;

/// <summary>
/// Answers a read whose value the owner would not send over remoting (<see cref="Replies.FetchFromOwner"/>): the
/// value is fetched from the owner's own HTTP API, on a connection of its own, and relayed as the owner answers it.
/// The fetch is a read of its own, made within the client's request, so its answer is as current as the client may
/// expect. A fetch carries <see cref="Header"/>: the node that receives one never fetches again, so a partition that
/// moved meanwhile costs the client a 503 and a retry, not a chain of fetches.
/// </summary>
public sealed class OwnerFetch(ActorHaSettings settings) : IDisposable
{
    public const string Header = "ActorHa-Fetch";

    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    })
    {
        Timeout = settings.RequestTimeout,
    };

    public async Task<IResult> RelayAsync(HttpRequest request, Replies.FetchFromOwner fetch, CancellationToken ct)
    {
        if (request.Headers.ContainsKey(Header))
        {
            return Problems.Unavailable(new Replies.Unavailable($"the partition of '{fetch.Key}' moved while its {fetch.Length}-byte value was being fetched from its owner", TimeSpan.FromMilliseconds(200)));
        }

        using var message = new HttpRequestMessage(HttpMethods.IsHead(request.Method) ? HttpMethod.Head : HttpMethod.Get, fetch.OwnerUrl + KvEndpoints.Location(fetch.Key));
        message.Headers.Add(Header, "owner");
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !ct.IsCancellationRequested))
        {
            return Problems.Unavailable(new Replies.Unavailable(
                $"the value of '{fetch.Key}' ({fetch.Length} bytes) is fetched from its owner's API at {fetch.OwnerUrl}, which did not answer ({e.Message})", TimeSpan.FromSeconds(1)));
        }

        return new Relayed(response);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The owner's answer as it came: status, the headers a read carries, and the body.</summary>
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
