using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using ActorHa.Client;
using ActorHa.Domain;
using ActorHa.Launcher;

namespace ActorHa.Cli.Bench;

public enum Fault
{
    Kill,
    Sigstop,
    Leave,
}

public sealed record FailoverOptions(int Nodes, int Runs, Fault Fault, string Config, int Clients, string DataDir, int Partitions,
    IReadOnlyDictionary<string, string> StoreSettings, string StoreDescription);

/// <summary>One run: which node failed, how long its partitions were unwritable, and what the clients saw.</summary>
public sealed record FailoverRun(
    int Run, string Victim, bool HeldCoordinator, int PartitionsMoved, TimeSpan? Failover,
    int Ok, int Failed, int Indeterminate, int Lost, int Checked);

/// <summary>
/// `actorha bench failover`: a local cluster under continuous writes from several clients (to the nodes that
/// stay up), a fault on a node that owns partitions, and per run the time from the fault to the first
/// successful write to every partition that lived on that node. Afterwards every acknowledged write is read
/// back: it must be there at its acknowledged version or later.
/// </summary>
public sealed class FailoverBenchmark(FailoverOptions options, TextWriter output)
{
    private const int KeysPerPartition = 4;
    private static readonly TimeSpan Warmup = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxFailover = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan FreezeFor = TimeSpan.FromSeconds(10);

    public async Task<IReadOnlyList<FailoverRun>> RunAsync(CancellationToken ct)
    {
        var dataDir = Path.Combine(Path.GetFullPath(options.DataDir), $"failover-{options.Config}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        var settings = new Dictionary<string, string>(options.StoreSettings);
        if (options.Config != "tuned")
        {
            settings["AkkaProfile"] = options.Config;
        }

        await using var cluster = new LocalCluster(LocalClusterOptions.OnFreePorts(options.Nodes, dataDir) with
        {
            Partitions = options.Partitions,
            Settings = settings,
        });
        output.WriteLine($"# failover benchmark: {options.Nodes} nodes, fault {options.Fault.ToString().ToLowerInvariant()}, config {options.Config}, {options.Clients} clients, store {options.StoreDescription}, data {dataDir}");
        cluster.StartAll();
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);

        var map = new PartitionMap(options.Partitions);
        var keys = KeysCoveringEveryPartition(map);
        var acked = new ConcurrentDictionary<string, (long Version, string Value)>();
        var runs = new List<FailoverRun>();
        output.WriteLine($"{"run",3} {"victim",-7} {"coord",5} {"moved",5} {"failover",9} {"ok",7} {"failed",6} {"indet",5} {"lost",4} {"checked",7}");
        for (var run = 1; run <= options.Runs; run++)
        {
            var result = await OneRunAsync(run, cluster, map, keys, acked, ct);
            runs.Add(result);
            output.WriteLine($"{result.Run,3} {result.Victim,-7} {(result.HeldCoordinator ? "yes" : "no"),5} {result.PartitionsMoved,5} {Format(result.Failover),9} {result.Ok,7} {result.Failed,6} {result.Indeterminate,5} {result.Lost,4} {result.Checked,7}");
        }

        var times = runs.Where(r => r.Failover is not null).Select(r => r.Failover!.Value.TotalMilliseconds).Order().ToList();
        if (times.Count > 0)
        {
            output.WriteLine($"failover p50 {Percentile(times, 0.5) / 1000:0.00} s, max {times[^1] / 1000:0.00} s over {times.Count} runs; " +
                             $"failed {runs.Sum(r => r.Failed)}, indeterminate {runs.Sum(r => r.Indeterminate)}, acknowledged writes lost {runs.Sum(r => r.Lost)}");
        }

        return runs;
    }

    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    private static string Format(TimeSpan? t) => t is null ? "none" : $"{t.Value.TotalSeconds:0.000} s";

    private async Task<FailoverRun> OneRunAsync(int run, LocalCluster cluster, PartitionMap map, IReadOnlyList<string> keys,
        ConcurrentDictionary<string, (long Version, string Value)> acked, CancellationToken ct)
    {
        // Victim: alternately the node holding the sharding coordinator (the oldest member) and another owner.
        var observer = cluster.Nodes.First(n => n.IsRunning);
        using var before = await observer.Client.ClusterAsync(ct);
        var owners = before.RootElement.GetProperty("partitions").EnumerateArray()
            .ToDictionary(p => p.GetProperty("partition").GetInt32(), p => p.GetProperty("owner").GetString());
        var oldest = OldestMember(before.RootElement);
        var candidates = cluster.Nodes.Where(n => owners.Values.Any(o => o is not null && o.EndsWith($":{n.AkkaPort}", StringComparison.Ordinal))).ToList();
        var victim = run % 2 == 1
            ? candidates.FirstOrDefault(n => oldest?.EndsWith($":{n.AkkaPort}", StringComparison.Ordinal) == true) ?? candidates[0]
            : candidates.FirstOrDefault(n => oldest?.EndsWith($":{n.AkkaPort}", StringComparison.Ordinal) != true) ?? candidates[0];
        var moved = owners.Where(o => o.Value?.EndsWith($":{victim.AkkaPort}", StringComparison.Ordinal) == true).Select(o => o.Key).ToHashSet();
        var heldCoordinator = oldest?.EndsWith($":{victim.AkkaPort}", StringComparison.Ordinal) == true;
        var survivors = cluster.Nodes.Where(n => n != victim && n.IsRunning).ToList();

        var stats = new RunStats();
        using var stopLoad = new CancellationTokenSource();
        var faultAt = new StrongBox<long>(long.MaxValue);
        var firstSuccess = new ConcurrentDictionary<int, long>();
        var clients = Enumerable.Range(0, options.Clients).Select(i => Task.Run(() => ClientLoopAsync(i, options.Clients, survivors, keys, map, acked, stats, faultAt, firstSuccess, stopLoad.Token), CancellationToken.None)).ToList();

        await Task.Delay(Warmup, ct);
        var clock = Stopwatch.StartNew();
        Interlocked.Exchange(ref faultAt.Value, Stopwatch.GetTimestamp());
        output.WriteLine($"#   run {run}: {options.Fault.ToString().ToLowerInvariant()} {victim.Name} at {DateTime.UtcNow:HH:mm:ss.fff}");
        var faultStarted = new TaskCompletionSource();
        var restore = InjectFault(cluster, victim, faultStarted.Task, ct);

        while (clock.Elapsed < MaxFailover && !moved.All(firstSuccess.ContainsKey))
        {
            await Task.Delay(20, ct);
        }

        // The node comes back only after its partitions were measured elsewhere: a restarted incarnation on
        // the same address would get the old one downed at once and flatter the figure.
        faultStarted.SetResult();

        TimeSpan? failover = moved.All(firstSuccess.ContainsKey)
            ? Stopwatch.GetElapsedTime(faultAt.Value, moved.Max(p => firstSuccess[p]))
            : null;
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        stopLoad.Cancel();
        await Task.WhenAll(clients);
        await restore;
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);

        var (lost, checkedKeys) = await VerifyAsync(cluster.Nodes.First(n => n.IsRunning), acked, ct);
        return new FailoverRun(run, victim.Name, heldCoordinator, moved.Count, failover, stats.Ok, stats.Failed, stats.Indeterminate, lost, checkedKeys);
    }

    /// <summary>Starts the fault; the returned task brings the node back (restart, thaw, rejoin) when it is over.</summary>
    private Task InjectFault(LocalCluster cluster, LocalNode victim, Task measured, CancellationToken ct)
    {
        switch (options.Fault)
        {
            case Fault.Kill:
                cluster.Kill(victim.Index);
                return RestartAfterAsync(cluster, victim, measured);
            case Fault.Sigstop:
                cluster.Freeze(victim.Index);
                return ThawAndRestartAsync(cluster, victim, measured, ct);
            case Fault.Leave:
                var stopping = cluster.StopAsync(victim.Index, TimeSpan.FromSeconds(60));
                return RestartAfterAsync(cluster, victim, Task.WhenAll(stopping, measured));
            default:
                throw new ArgumentOutOfRangeException(nameof(options), options.Fault, "Unknown fault.");
        }
    }

    private static async Task RestartAfterAsync(LocalCluster cluster, LocalNode victim, Task after)
    {
        await after;
        cluster.Start(victim.Index);
    }

    /// <summary>Freeze for 10 s, thaw (unless a survivor has ended the node meanwhile, as the fence does once it is downed); the node finds itself downed and its lease void, and exits; then restart it.</summary>
    private static async Task ThawAndRestartAsync(LocalCluster cluster, LocalNode victim, Task measured, CancellationToken ct)
    {
        await Task.Delay(FreezeFor, ct);
        cluster.Thaw(victim.Index);
        await measured;
        await cluster.StopAsync(victim.Index, TimeSpan.FromSeconds(20));
        cluster.Start(victim.Index);
    }

    private static async Task ClientLoopAsync(int client, int clients, IReadOnlyList<LocalNode> nodes, IReadOnlyList<string> keys, PartitionMap map,
        ConcurrentDictionary<string, (long Version, string Value)> acked, RunStats stats, StrongBox<long> faultAt,
        ConcurrentDictionary<int, long> firstSuccess, CancellationToken stop)
    {
        using var http = NodeHttp.Create(TimeSpan.FromSeconds(10));
        var random = new Random(client * 7919);
        var sequence = 0;
        // A sweep, not random keys: keys[j] lives in partition j % partitions, and client c starts c * (partitions
        // / clients) further on, so together the clients try every partition once every partitions/clients
        // requests. With random keys, finding each of 16 moved partitions again took a coupon collector's
        // ~100 requests after they were back, which the failover time then included.
        var stride = Math.Max(1, map.PartitionCount / Math.Max(1, clients));
        var position = client * stride;
        while (!stop.IsCancellationRequested)
        {
            var key = keys[position++ % keys.Count];
            var node = nodes[random.Next(nodes.Count)];
            var value = $"c{client}-{++sequence}";
            var startedAt = Stopwatch.GetTimestamp();
            try
            {
                using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(value));
                using var response = await http.PutAsync($"{node.HttpUrl}/{ActorHaClient.KeyPath(key)}", content, CancellationToken.None);
                if (response.IsSuccessStatusCode)
                {
                    var version = long.Parse(response.Headers.ETag!.Tag.Trim('"'), CultureInfo.InvariantCulture);
                    acked.AddOrUpdate(key, (version, value), (_, old) => version > old.Version ? (version, value) : old);
                    Interlocked.Increment(ref stats.Ok);
                    if (startedAt >= Interlocked.Read(ref faultAt.Value))
                    {
                        firstSuccess.TryAdd(map.For(key).Value, Stopwatch.GetTimestamp());
                    }
                }
                else
                {
                    Interlocked.Increment(ref stats.Failed);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Interlocked.Increment(ref stats.Indeterminate);
            }
        }
    }

    /// <summary>Every acknowledged key must read back at its acknowledged version or later (with the same value at that version).</summary>
    private static async Task<(int Lost, int Checked)> VerifyAsync(LocalNode node, ConcurrentDictionary<string, (long Version, string Value)> acked, CancellationToken ct)
    {
        var lost = 0;
        foreach (var (key, expected) in acked)
        {
            Outcome<ValueRead> read;
            var attempts = 0;
            do
            {
                read = await node.Client.GetAsync(key, ct);
            }
            while (read.Status == HttpStatusCode.ServiceUnavailable && ++attempts < 20 && await Delay(ct));

            var ok = read.IsSuccess && (read.Value!.Version > expected.Version ||
                                        (read.Value.Version == expected.Version && Encoding.UTF8.GetString(read.Value.Value) == expected.Value));
            if (!ok)
            {
                lost++;
            }
        }

        return (lost, acked.Count);
    }

    private static async Task<bool> Delay(CancellationToken ct)
    {
        await Task.Delay(250, ct);
        return true;
    }

    private static string? OldestMember(JsonElement cluster) =>
        // The cluster view lists members by address; the oldest Up member hosts the singletons (the coordinator).
        cluster.GetProperty("members").EnumerateArray()
            .Where(m => m.GetProperty("isOldest").GetBoolean())
            .Select(m => m.GetProperty("address").GetString())
            .FirstOrDefault();

    /// <summary>KeysPerPartition keys of every partition, interleaved: keys[j] is in partition j % partitions.</summary>
    private static List<string> KeysCoveringEveryPartition(PartitionMap map)
    {
        var perPartition = Enumerable.Range(0, map.PartitionCount).Select(_ => new List<string>()).ToArray();
        for (var i = 0; perPartition.Any(p => p.Count < KeysPerPartition); i++)
        {
            var key = $"failover/{i}";
            var keysOfPartition = perPartition[map.For(key).Value];
            if (keysOfPartition.Count < KeysPerPartition)
            {
                keysOfPartition.Add(key);
            }
        }

        return Enumerable.Range(0, KeysPerPartition).SelectMany(slot => perPartition.Select(p => p[slot])).ToList();
    }

    private sealed class RunStats
    {
        public int Ok;
        public int Failed;
        public int Indeterminate;
    }

    private sealed class StrongBox<T>(T value)
    {
        public T Value = value;
    }
}
