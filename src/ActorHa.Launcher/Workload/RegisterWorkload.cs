using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using ActorHa.Checker;
using ActorHa.Client;

namespace ActorHa.Launcher.Workload;

/// <summary>
/// Jepsen-style clients for a <see cref="LocalCluster"/>: writes, compare-and-sets and reads on a few hot
/// keys and many cold keys, each through a random node, every operation recorded with its outcome
/// (ok / fail / info) for <see cref="HistoryChecker"/>. Shared by `actorha chaos` and the multi-node specs.
/// Every write carries an Idempotency-Key; a write whose outcome is unknown (timeout, lost connection, 503) is
/// sent again with the same key through another random node until its outcome is known or
/// <see cref="RetryUnknownWritesFor"/> has passed, and recorded as one operation from its first attempt to its
/// last answer. The retries make the history stricter, not looser: a write applied twice would leave a version
/// that no write explains, which the checker reports, where an unknown write would have excused it.
/// </summary>
public sealed class RegisterWorkload(LocalCluster cluster, int seed, string keyPrefix = "", int hotKeys = 5, int coldKeys = 200)
{
    /// <summary>How long a write with an unknown outcome is retried with its Idempotency-Key; zero: not at all.</summary>
    public TimeSpan RetryUnknownWritesFor { get; init; } = TimeSpan.FromSeconds(10);

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _run = Guid.NewGuid().ToString("N");
    private readonly ConcurrentQueue<Operation> _history = new();

    public IReadOnlyCollection<Operation> History => _history;

    /// <summary>Runs <paramref name="clients"/> clients until <paramref name="stop"/> is cancelled.</summary>
    public Task RunAsync(int clients, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, clients).Select(c => Task.Run(() => ClientAsync(c, stop), CancellationToken.None)));

    /// <summary>
    /// Reads every key the workload touched once more (retrying what is unavailable, through another node each
    /// time), so lost writes show. Returns the final reads whose outcome stayed unknown: those keys went unchecked
    /// at the end, which the caller must say.
    /// </summary>
    public async Task<IReadOnlyList<Operation>> FinalReadsAsync(CancellationToken ct)
    {
        using var http = NodeHttp.Create(TimeSpan.FromSeconds(10));
        var keys = _history.Select(o => o.Key).Distinct().Order(StringComparer.Ordinal).ToList();
        var unknown = new List<Operation>();
        for (var k = 0; k < keys.Count; k++)
        {
            Operation read;
            var attempts = 0;
            do
            {
                var running = cluster.Nodes.Where(n => n.IsRunning).ToList();
                read = await ReadAsync(http, running[(k + attempts) % running.Count], -1, keys[k]).ConfigureAwait(false);
            }
            while (read.Result == OpResult.Info && ++attempts < FinalReadAttempts && await Pause(ct).ConfigureAwait(false));

            _history.Enqueue(read);
            if (read.Result == OpResult.Info)
            {
                unknown.Add(read);
            }
        }

        return unknown;
    }

    /// <summary>How many times a final read is tried, 0.5 s apart, before its key is left unchecked.</summary>
    public const int FinalReadAttempts = 20;

    public CheckResult Check() => HistoryChecker.Check(_history);

    private async Task ClientAsync(int client, CancellationToken stop)
    {
        // The plan and the retries draw from separate streams: what a client does next never depends on how
        // many retries the faults cost it, so a seed replays the same sequence of operations.
        using var plan = Plan(seed, client, cluster.Nodes.Count, keyPrefix, hotKeys, coldKeys).GetEnumerator();
        var random = new Random(Mix(seed, client, stream: 1));
        using var http = NodeHttp.Create(TimeSpan.FromSeconds(7));
        var lastSeen = new Dictionary<string, long>();
        while (!stop.IsCancellationRequested && plan.MoveNext())
        {
            var (kind, key, nodeIndex, value) = plan.Current;
            var node = cluster.Nodes[nodeIndex];
            var op = kind switch
            {
                OpKind.Put => await WriteUntilKnownAsync(http, random, client, node, OpKind.Put, key, value, null).ConfigureAwait(false),
                OpKind.Cas => await WriteUntilKnownAsync(http, random, client, node, OpKind.Cas, key, value, lastSeen.GetValueOrDefault(key)).ConfigureAwait(false),
                _ => await ReadAsync(http, node, client, key).ConfigureAwait(false),
            };

            if (op.Result == OpResult.Ok && op.Version is { } v)
            {
                lastSeen[key] = v;
            }
            else if (op.Result == OpResult.Ok && op.NotFound)
            {
                lastSeen[key] = 0;
            }

            _history.Enqueue(op);
            if (op.Result != OpResult.Ok)
            {
                // A client that just failed backs off a little, as a real one would.
                await Task.Delay(random.Next(20, 100), CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// What client <paramref name="client"/> of a workload seeded with <paramref name="seed"/> does, in order: a
    /// put, compare-and-set or read of which key through which node (for a write, its first attempt), with which
    /// value. A pure function of its arguments, so the same seed replays the same operations.
    /// </summary>
    public static IEnumerable<PlannedOperation> Plan(int seed, int client, int nodes, string keyPrefix = "", int hotKeys = 5, int coldKeys = 200)
    {
        var random = new Random(Mix(seed, client, stream: 0));
        for (var n = 1; ; n++)
        {
            var key = random.NextDouble() < 0.6 ? $"{keyPrefix}hot/{random.Next(hotKeys)}" : $"{keyPrefix}cold/{random.Next(coldKeys)}";
            var node = random.Next(nodes);
            var kind = random.NextDouble() switch { < 0.35 => OpKind.Put, < 0.65 => OpKind.Cas, _ => OpKind.Get };
            yield return new PlannedOperation(kind, key, node, $"c{client}-{n}");
        }
    }

    /// <summary>
    /// A seed for one client's stream. Not HashCode.Combine: that is randomized per process, and a replay would get
    /// other streams. SplitMix64's finalizer, so neighbouring clients get unrelated streams.
    /// </summary>
    internal static int Mix(int seed, int client, int stream)
    {
        unchecked
        {
            var z = ((ulong)(uint)seed << 32 | (uint)client) + (ulong)stream * 0xD1B54A32D192ED03UL + 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return (int)(z ^ (z >> 31));
        }
    }

    /// <summary>One write, first through <paramref name="first"/> then random nodes, until its outcome is known or the retry window has passed.</summary>
    private async Task<Operation> WriteUntilKnownAsync(HttpClient http, Random random, int client, LocalNode first, OpKind kind, string key, string value, long? expected)
    {
        // Values are unique within a workload (client and sequence number); the run id keeps two workloads on one
        // store, same seed or not, from ever sharing a key and getting each other's remembered answers.
        var idempotencyKey = $"{_run}/{keyPrefix}{value}";
        var start = _clock.ElapsedTicks;
        var started = Stopwatch.GetTimestamp();
        for (var node = first; ; node = cluster.Nodes[random.Next(cluster.Nodes.Count)])
        {
            var op = await WriteAsync(http, node, client, kind, key, value, expected, idempotencyKey).ConfigureAwait(false);
            if (op.Result != OpResult.Info || Stopwatch.GetElapsedTime(started) >= RetryUnknownWritesFor)
            {
                return op with { Start = start };
            }

            await Task.Delay(random.Next(100, 250), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task<Operation> WriteAsync(HttpClient http, LocalNode node, int client, OpKind kind, string key, string value, long? expected, string idempotencyKey)
    {
        var start = _clock.ElapsedTicks;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Put, $"{node.HttpUrl}/{ActorHaClient.KeyPath(key)}") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(value)) };
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
            if (kind == OpKind.Cas)
            {
                request.Headers.TryAddWithoutValidation(expected == 0 ? "If-None-Match" : "If-Match", expected == 0 ? "*" : $"\"{expected}\"");
            }

            using var response = await http.SendAsync(request, CancellationToken.None).ConfigureAwait(false);
            var end = _clock.ElapsedTicks;
            return response.StatusCode switch
            {
                HttpStatusCode.OK or HttpStatusCode.Created => new(client, kind, key, value, start, end, OpResult.Ok, Version(response), expected),
                HttpStatusCode.PreconditionFailed or HttpStatusCode.BadRequest => new(client, kind, key, value, start, end, OpResult.Fail, null, expected),
                _ => new(client, kind, key, value, start, end, OpResult.Info, null, expected),
            };
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new(client, kind, key, value, start, _clock.ElapsedTicks, OpResult.Info, null, expected);
        }
    }

    private async Task<Operation> ReadAsync(HttpClient http, LocalNode node, int client, string key)
    {
        var start = _clock.ElapsedTicks;
        try
        {
            using var response = await http.GetAsync($"{node.HttpUrl}/{ActorHaClient.KeyPath(key)}", CancellationToken.None).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None).ConfigureAwait(false);
            var end = _clock.ElapsedTicks;
            return response.StatusCode switch
            {
                HttpStatusCode.OK => new(client, OpKind.Get, key, body, start, end, OpResult.Ok, Version(response)),
                HttpStatusCode.NotFound => new(client, OpKind.Get, key, null, start, end, OpResult.Ok, NotFound: true),
                _ => new(client, OpKind.Get, key, null, start, end, OpResult.Info),
            };
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new(client, OpKind.Get, key, null, start, _clock.ElapsedTicks, OpResult.Info);
        }
    }

    private static long? Version(HttpResponseMessage response) =>
        response.Headers.ETag is { } etag ? long.Parse(etag.Tag.Trim('"'), CultureInfo.InvariantCulture) : null;

    private static async Task<bool> Pause(CancellationToken ct)
    {
        await Task.Delay(500, ct).ConfigureAwait(false);
        return true;
    }
}

/// <summary>One step of a client's plan: the kind, the key, the node (index in the cluster) and the value a write sends.</summary>
public sealed record PlannedOperation(OpKind Kind, string Key, int Node, string Value);
