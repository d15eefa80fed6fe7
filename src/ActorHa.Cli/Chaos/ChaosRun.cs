using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using ActorHa.Checker;
using ActorHa.Client;
using ActorHa.Launcher;

namespace ActorHa.Cli.Chaos;

public sealed record ChaosOptions(int Nodes, TimeSpan Duration, IReadOnlyList<string> Faults, int Seed, int Clients, string DataDir,
    IReadOnlyDictionary<string, string> StoreSettings, string StoreDescription);

/// <summary>
/// `actorha chaos`: concurrent clients doing writes, compare-and-sets and reads on a few hot keys and many
/// cold keys through every node, while faults (kill -9 then restart, SIGSTOP then SIGCONT) hit random nodes
/// at random intervals. The history goes to a JSON-lines file and through <see cref="HistoryChecker"/>.
/// Everything random comes from the seed, so a run's fault schedule and workload can be replayed.
/// </summary>
public sealed class ChaosRun(ChaosOptions options, TextWriter output)
{
    private const int HotKeys = 5;
    private const int ColdKeys = 200;

    public async Task<int> RunAsync(CancellationToken ct)
    {
        var unsupported = options.Faults.Except(["kill", "pause"]).ToList();
        if (unsupported.Count > 0)
        {
            await Console.Error.WriteLineAsync($"actorha chaos: fault(s) not supported yet: {string.Join(", ", unsupported)} (supported: kill, pause).");
            return 2;
        }

        var dataDir = Path.Combine(Path.GetFullPath(options.DataDir), $"chaos-{options.Seed}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        await using var cluster = new LocalCluster(LocalClusterOptions.OnFreePorts(options.Nodes, dataDir) with
        {
            Settings = options.StoreSettings,
        });
        output.WriteLine($"# chaos: {options.Nodes} nodes, {options.Duration.TotalSeconds:0} s, faults {string.Join(",", options.Faults)}, seed {options.Seed}, {options.Clients} clients, store {options.StoreDescription}, data {dataDir}");
        cluster.StartAll();
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);

        var clock = Stopwatch.StartNew();
        var history = new ConcurrentQueue<Operation>();
        using var stop = new CancellationTokenSource(options.Duration);
        var clients = Enumerable.Range(0, options.Clients)
            .Select(c => Task.Run(() => ClientAsync(c, cluster, clock, history, stop.Token), CancellationToken.None))
            .ToList();
        var faults = await InjectFaultsAsync(cluster, stop.Token);
        await Task.WhenAll(clients);

        output.WriteLine($"# healing: thaw and restart every node, then read every key back");
        await HealAsync(cluster);
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);
        await FinalReadsAsync(cluster, clock, history, ct);

        var historyFile = Path.Combine(dataDir, "history.jsonl");
        HistoryFile.Write(historyFile, history.OrderBy(o => o.Start));
        var result = HistoryChecker.Check(history);
        output.WriteLine($"operations {result.Operations}: ok {result.Ok}, failed {result.Failed}, indeterminate {result.Indeterminate}");
        output.WriteLine($"faults injected {faults.Count}: {string.Join(", ", faults.GroupBy(f => f).Select(g => $"{g.Key} {g.Count()}"))}");
        output.WriteLine($"history {historyFile}");
        output.WriteLine($"violations {result.Violations.Count}");
        foreach (var violation in result.Violations.Take(20))
        {
            output.WriteLine($"  {violation.Kind} {violation.Key}: {violation.Detail}");
        }

        return result.IsValid ? 0 : 1;
    }

    private async Task ClientAsync(int client, LocalCluster cluster, Stopwatch clock, ConcurrentQueue<Operation> history, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(options.Seed, client));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(7) };
        var lastSeen = new Dictionary<string, long>();
        var n = 0;
        while (!stop.IsCancellationRequested)
        {
            var key = random.NextDouble() < 0.6 ? $"hot/{random.Next(HotKeys)}" : $"cold/{random.Next(ColdKeys)}";
            var node = cluster.Nodes[random.Next(cluster.Nodes.Count)];
            var roll = random.NextDouble();
            var value = $"c{client}-{++n}";
            var start = clock.ElapsedTicks;
            Operation op;
            if (roll < 0.35)
            {
                op = await WriteAsync(http, node, client, OpKind.Put, key, value, null, start, clock);
            }
            else if (roll < 0.65)
            {
                op = await WriteAsync(http, node, client, OpKind.Cas, key, value, lastSeen.GetValueOrDefault(key), start, clock);
            }
            else
            {
                op = await ReadAsync(http, node, client, key, start, clock);
            }

            if (op.Result == OpResult.Ok && op.Version is { } v)
            {
                lastSeen[key] = v;
            }
            else if (op.Result == OpResult.Ok && op.NotFound)
            {
                lastSeen[key] = 0;
            }

            history.Enqueue(op);
            if (op.Result != OpResult.Ok)
            {
                // A client that just failed backs off a little, as a real one would.
                await Task.Delay(random.Next(20, 100), CancellationToken.None);
            }
        }
    }

    private static async Task<Operation> WriteAsync(HttpClient http, LocalNode node, int client, OpKind kind, string key, string value, long? expected, long start, Stopwatch clock)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Put, $"{node.HttpUrl}/{ActorHaClient.KeyPath(key)}") { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(value)) };
            if (kind == OpKind.Cas)
            {
                request.Headers.TryAddWithoutValidation(expected == 0 ? "If-None-Match" : "If-Match", expected == 0 ? "*" : $"\"{expected}\"");
            }

            using var response = await http.SendAsync(request, CancellationToken.None);
            var end = clock.ElapsedTicks;
            return response.StatusCode switch
            {
                HttpStatusCode.OK or HttpStatusCode.Created => new(client, kind, key, value, start, end, OpResult.Ok, Version(response), expected),
                HttpStatusCode.PreconditionFailed or HttpStatusCode.BadRequest => new(client, kind, key, value, start, end, OpResult.Fail, null, expected),
                _ => new(client, kind, key, value, start, end, OpResult.Info, null, expected),
            };
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new(client, kind, key, value, start, clock.ElapsedTicks, OpResult.Info, null, expected);
        }
    }

    private static async Task<Operation> ReadAsync(HttpClient http, LocalNode node, int client, string key, long start, Stopwatch clock)
    {
        try
        {
            using var response = await http.GetAsync($"{node.HttpUrl}/{ActorHaClient.KeyPath(key)}", CancellationToken.None);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
            var end = clock.ElapsedTicks;
            return response.StatusCode switch
            {
                HttpStatusCode.OK => new(client, OpKind.Get, key, body, start, end, OpResult.Ok, Version(response)),
                HttpStatusCode.NotFound => new(client, OpKind.Get, key, null, start, end, OpResult.Ok, NotFound: true),
                _ => new(client, OpKind.Get, key, null, start, end, OpResult.Info),
            };
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return new(client, OpKind.Get, key, null, start, clock.ElapsedTicks, OpResult.Info);
        }
    }

    private static long? Version(HttpResponseMessage response) =>
        response.Headers.ETag is { } etag ? long.Parse(etag.Tag.Trim('"'), CultureInfo.InvariantCulture) : null;

    /// <summary>Random faults on random nodes until the run ends; a killed node is restarted, a frozen one thawed.</summary>
    private async Task<List<string>> InjectFaultsAsync(LocalCluster cluster, CancellationToken stop)
    {
        var random = new Random(options.Seed);
        var injected = new List<string>();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(random.Next(1000, 2500)), stop);
                RestartExited(cluster);
                var running = cluster.Nodes.Where(n => n.IsRunning).ToList();
                // Keep a majority alive, so the cluster can make progress and the history stays interesting.
                if (running.Count <= options.Nodes / 2 + 1 && options.Nodes > 1)
                {
                    continue;
                }

                var victim = running[random.Next(running.Count)];
                var fault = options.Faults[random.Next(options.Faults.Count)];
                var length = TimeSpan.FromMilliseconds(random.Next(500, 3000));
                output.WriteLine($"#   {clockNow()} {fault} {victim.Name} for {length.TotalSeconds:0.0} s");
                injected.Add(fault);
                if (fault == "kill")
                {
                    cluster.Kill(victim.Index);
                    await Task.Delay(length, CancellationToken.None);
                    cluster.Start(victim.Index);
                }
                else
                {
                    cluster.Freeze(victim.Index);
                    await Task.Delay(length, CancellationToken.None);
                    cluster.Thaw(victim.Index);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }

        return injected;

        static string clockNow() => DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
    }

    private static void RestartExited(LocalCluster cluster)
    {
        foreach (var node in cluster.Nodes.Where(n => n.Process is { HasExited: true }))
        {
            cluster.Start(node.Index);
        }
    }

    private static async Task HealAsync(LocalCluster cluster)
    {
        foreach (var node in cluster.Nodes.Where(n => n.IsRunning))
        {
            cluster.Thaw(node.Index);
        }

        // A node thawed after being downed shuts itself down: give it the time, then restart what exited.
        await Task.Delay(TimeSpan.FromSeconds(3));
        RestartExited(cluster);
    }

    private static async Task FinalReadsAsync(LocalCluster cluster, Stopwatch clock, ConcurrentQueue<Operation> history, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var keys = history.Select(o => o.Key).Distinct().ToList();
        foreach (var key in keys)
        {
            var node = cluster.Nodes[Math.Abs(key.GetHashCode(StringComparison.Ordinal)) % cluster.Nodes.Count];
            Operation read;
            var attempts = 0;
            do
            {
                read = await ReadAsync(http, node, -1, key, clock.ElapsedTicks, clock);
            }
            while (read.Result == OpResult.Info && ++attempts < 20 && await Pause(ct));

            history.Enqueue(read);
        }
    }

    private static async Task<bool> Pause(CancellationToken ct)
    {
        await Task.Delay(500, ct);
        return true;
    }
}
