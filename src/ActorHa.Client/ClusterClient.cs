using System.Diagnostics;
using System.Net;
using System.Text.Json;
using ActorHa.Domain;

namespace ActorHa.Client;

/// <summary>
/// A client for a whole cluster rather than one node: it learns every member's HTTP URL and each partition's
/// owner from /v1/cluster, sends each key to its owner (no hop between nodes), and when a node cannot be reached
/// or answers 503 because a partition is moving, it tries again on another node until <c>retryFor</c> has passed.
/// Writes keep one Idempotency-Key across all attempts, on whichever node, so a write whose answer was lost is
/// answered with its first outcome and applied once. Routes are only a shortcut: any node serves any key, so a
/// stale route costs a hop, never a wrong answer. Safe for concurrent use.
/// </summary>
/// <remarks>
/// A failed call throws <see cref="HttpRequestException"/>: no node could be connected to, so nothing was applied;
/// or its subclass <see cref="OutcomeUnknownException"/>: something was sent and no answer came, so a write may
/// have been applied (resend it with the same idempotency key to find out). A request that cannot be built (an
/// Idempotency-Key HTTP cannot carry) throws <see cref="ArgumentException"/> before anything is sent, never one of those.
/// </remarks>
public sealed class ClusterClient : IDisposable
{
    /// <summary>How long routes are trusted before they are fetched again (partitions move on failover and rebalance).</summary>
    public static readonly TimeSpan RoutesMaxAge = TimeSpan.FromSeconds(2);

    // A node that refused a connection or timed out is tried last for this long.
    private static readonly TimeSpan Shunned = TimeSpan.FromSeconds(5);

    // Routes are a shortcut: a refresh that takes longer than this is abandoned, not waited for.
    private static readonly TimeSpan RefreshTimeout = TimeSpan.FromSeconds(2);

    private readonly TimeSpan _timeout;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (HttpClient Http, ActorHaClient Client)> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _shunnedUntil = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private OwnerRoutes? _routes;
    private long _routesAt;
    private int _next;
    private Task? _refreshing;

    /// <param name="seeds">One or more nodes' HTTP URLs; the others are learned from the cluster.</param>
    /// <param name="timeout">One HTTP attempt's timeout.</param>
    public ClusterClient(IEnumerable<string> seeds, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
        foreach (var seed in seeds)
        {
            Add(seed);
        }

        if (_order.Count == 0)
        {
            throw new ArgumentException("At least one node URL is needed.", nameof(seeds));
        }
    }

    /// <summary>Every node URL known so far: the seeds and the members learned from /v1/cluster.</summary>
    public IReadOnlyList<string> Nodes
    {
        get
        {
            lock (_gate)
            {
                return [.. _order];
            }
        }
    }

    /// <summary>The node the next request for <paramref name="key"/> goes to first: its partition's owner when known.</summary>
    public string? OwnerUrlFor(string key) => Volatile.Read(ref _routes)?.UrlFor(key) is { } url ? Normalize(url) : null;

    public Task<Outcome<KeyVersion>> PutAsync(string key, byte[] value, long? expectedVersion = null, string? idempotencyKey = null, TimeSpan? retryFor = null, CancellationToken ct = default)
    {
        IdempotencyKeys.ThrowIfInvalid(idempotencyKey);
        var id = idempotencyKey ?? Guid.NewGuid().ToString();
        return SendAsync(key, (node, c) => node.PutAsync(key, value, expectedVersion, c, id), retryFor, ct, isWrite: true);
    }

    public Task<Outcome<KeyVersion>> DeleteAsync(string key, long? expectedVersion = null, string? idempotencyKey = null, TimeSpan? retryFor = null, CancellationToken ct = default)
    {
        IdempotencyKeys.ThrowIfInvalid(idempotencyKey);
        var id = idempotencyKey ?? Guid.NewGuid().ToString();
        return SendAsync(key, (node, c) => node.DeleteAsync(key, expectedVersion, c, id), retryFor, ct, isWrite: true);
    }

    public Task<Outcome<ValueRead>> GetAsync(string key, TimeSpan? retryFor = null, CancellationToken ct = default) =>
        SendAsync(key, (node, c) => node.GetAsync(key, c), retryFor, ct);

    /// <summary>Lists keys through any node (every node merges all partitions).</summary>
    public Task<Outcome<KeyList>> ListAsync(string? prefix = null, int? limit = null, string? after = null, TimeSpan? retryFor = null, CancellationToken ct = default) =>
        SendAsync(null, (node, c) => node.ListAsync(prefix, limit, after, c), retryFor, ct);

    /// <summary>/v1/cluster from the first node that answers with one.</summary>
    /// <exception cref="HttpRequestException">No node answered with a cluster view.</exception>
    public async Task<JsonDocument> ClusterAsync(CancellationToken ct = default)
    {
        Exception? last = null;
        foreach (var url in Candidates(null))
        {
            JsonDocument? doc = null;
            try
            {
                doc = await Node(url).ClusterAsync(ct).ConfigureAwait(false);
                Learn(doc);
                return doc;
            }
            catch (Exception e) when (IsUnreachable(e, ct) || IsNotAClusterView(e))
            {
                doc?.Dispose();
                Shun(url);
                last = e;
            }
        }

        throw new HttpRequestException($"no node answered with a cluster view ({string.Join(", ", Nodes)}): {last?.Message}", last);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var node in _nodes.Values)
            {
                node.Http.Dispose();
            }

            _nodes.Clear();
        }
    }

    /// <summary>
    /// One request, tried on the key's owner first and then on the other nodes, round after round, until an answer
    /// other than 503 arrives or <paramref name="retryFor"/> (default 10 s) has passed; a window of zero tries each
    /// known node once. The whole call ends within the window plus one attempt's timeout, however many nodes hang.
    /// Past the window the last 503 is returned; without one, <see cref="OutcomeUnknownException"/> is thrown when
    /// some attempt may have reached a node (a timeout, a connection lost after sending), and
    /// <see cref="HttpRequestException"/> when none could connect.
    /// </summary>
    private async Task<Outcome<T>> SendAsync<T>(string? key, Func<ActorHaClient, CancellationToken, Task<Outcome<T>>> send, TimeSpan? retryFor, CancellationToken ct, bool isWrite = false)
    {
        var window = retryFor ?? TimeSpan.FromSeconds(10);
        var started = Stopwatch.GetTimestamp();
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        overall.CancelAfter(window + _timeout);
        var token = overall.Token;
        Outcome<T>? unavailable = null;
        Exception? failure = null;
        var maybeDelivered = false;
        try
        {
            await RefreshRoutesIfStaleAsync(token).ConfigureAwait(false);
            while (true)
            {
                foreach (var url in Candidates(key))
                {
                    try
                    {
                        var outcome = await send(Node(url), token).ConfigureAwait(false);
                        // Every node reads the same store, so one that cannot recover the partition speaks for all of them.
                        if (outcome.Status != HttpStatusCode.ServiceUnavailable || outcome.Problem?.Type == ActorHaClient.PartitionUnrecoverableType)
                        {
                            return outcome;
                        }

                        // The partition is moving, or this node lost its lease on it: another node may already serve it.
                        unavailable = outcome;
                    }
                    catch (Exception e) when (IsUnreachable(e, ct))
                    {
                        // Refused, reset or timed out. A write that may have arrived is safe to resend: it carries its idempotency key.
                        Shun(url);
                        failure = e;
                        maybeDelivered |= !CouldNotConnect(e);
                        token.ThrowIfCancellationRequested();
                    }
                }

                if (Stopwatch.GetElapsedTime(started) >= window)
                {
                    break;
                }

                await Task.Delay(ActorHaClient.RetryDelay, token).ConfigureAwait(false);
                await RefreshRoutesAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The overall deadline: whatever was in flight may have arrived.
            maybeDelivered = true;
        }

        if (unavailable is not null)
        {
            return unavailable;
        }

        var nodes = string.Join(", ", Nodes);
        // The time actually waited: one attempt may outlast the retry window by up to the per-attempt timeout
        // (a frozen node accepts the connection and never answers).
        var waited = $" in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.#} s";
        throw maybeDelivered
            ? new OutcomeUnknownException(isWrite
                ? $"no answer from {nodes}{waited}; the write may or may not have been applied"
                : $"no answer from {nodes}{waited}; nothing was changed, the read can be sent again", failure)
            : new HttpRequestException($"cannot connect to {nodes}: {failure?.Message}", failure);
    }

    /// <summary>The owner of <paramref name="key"/>'s partition first, then every other node in turn, nodes that failed lately last.</summary>
    private List<string> Candidates(string? key)
    {
        var owner = key is null ? null : OwnerUrlFor(key);
        lock (_gate)
        {
            var now = Stopwatch.GetTimestamp();
            var start = _next++ % _order.Count;
            var rotated = _order.Skip(start).Concat(_order.Take(start));
            if (owner is not null && _order.Contains(owner))
            {
                rotated = rotated.Where(u => u != owner).Prepend(owner);
            }

            return [.. rotated.OrderBy(u => _shunnedUntil.TryGetValue(u, out var until) && until > now)];
        }
    }

    private Task RefreshRoutesIfStaleAsync(CancellationToken ct) =>
        Volatile.Read(ref _routes) is null || Stopwatch.GetElapsedTime(Interlocked.Read(ref _routesAt)) > RoutesMaxAge
            ? RefreshRoutesAsync(ct)
            : Task.CompletedTask;

    /// <summary>
    /// Fetches members and owners from any node, at most one fetch at a time for all callers and at most
    /// <see cref="RefreshTimeout"/> long; without an answer the old routes stay (requests then go anywhere).
    /// </summary>
    private async Task RefreshRoutesAsync(CancellationToken ct)
    {
        Task refresh;
        lock (_gate)
        {
            _refreshing ??= FetchRoutesAsync();
            refresh = _refreshing;
        }

        await refresh.WaitAsync(ct).ConfigureAwait(false);
    }

    private async Task FetchRoutesAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(RefreshTimeout);
            using var doc = await ClusterAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            // No node answered in time: the request itself will find out which nodes it can reach.
        }
        finally
        {
            lock (_gate)
            {
                _refreshing = null;
            }
        }
    }

    private void Learn(JsonDocument cluster)
    {
        var root = cluster.RootElement;
        if (root.TryGetProperty("members", out var members))
        {
            foreach (var member in members.EnumerateArray())
            {
                if (member.TryGetProperty("httpUrl", out var url) && url.ValueKind == JsonValueKind.String && url.GetString() is { Length: > 0 } u)
                {
                    Add(u);
                }
            }
        }

        if (root.TryGetProperty("partitions", out _))
        {
            Volatile.Write(ref _routes, OwnerRoutes.From(cluster));
            Interlocked.Exchange(ref _routesAt, Stopwatch.GetTimestamp());
        }
    }

    private void Add(string url)
    {
        var normalized = Normalize(url);
        lock (_gate)
        {
            if (!_order.Contains(normalized))
            {
                _order.Add(normalized);
            }
        }
    }

    private ActorHaClient Node(string url)
    {
        lock (_gate)
        {
            if (!_nodes.TryGetValue(url, out var node))
            {
                var http = NodeHttp.Create(_timeout, url);
                node = (http, new ActorHaClient(http));
                _nodes[url] = node;
            }

            return node.Client;
        }
    }

    private void Shun(string url)
    {
        lock (_gate)
        {
            _shunnedUntil[url] = Stopwatch.GetTimestamp() + (long)(Shunned.TotalSeconds * Stopwatch.Frequency);
        }
    }

    private static bool IsUnreachable(Exception e, CancellationToken ct) =>
        e is HttpRequestException || (e is OperationCanceledException && !ct.IsCancellationRequested);

    /// <summary>The request never reached the node: nothing can have been applied.</summary>
    private static bool CouldNotConnect(Exception e) =>
        e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError };

    /// <summary>An answer that is not ActorHa's /v1/cluster (another service on that port, a proxy's error page).</summary>
    private static bool IsNotAClusterView(Exception e) =>
        e is JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException or FormatException;

    private static string Normalize(string url) => url.TrimEnd('/');
}

/// <summary>A request was sent but no answer came back in time: a write may or may not have been applied.</summary>
public sealed class OutcomeUnknownException(string message, Exception? inner) : HttpRequestException(message, inner);
