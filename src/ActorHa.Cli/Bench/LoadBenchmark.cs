using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using ActorHa.Client;
using ActorHa.Launcher;

namespace ActorHa.Cli.Bench;

public sealed record LoadOptions(int Nodes, IReadOnlyList<int> Concurrency, TimeSpan Duration, double ReadRatio, bool CompareEtcd, string DataDir, IReadOnlyList<string> Urls,
    IReadOnlyDictionary<string, string> StoreSettings, string StoreDescription, bool RouteToOwners = false, TimeSpan Warmup = default,
    int ValueBytes = LoadBenchmark.DefaultValueBytes, int Keys = LoadBenchmark.DefaultKeys, bool MemoryJournal = false);

/// <summary>Throughput and latency of one load phase.</summary>
/// <param name="CpuMicrosPerRequest">CPU time of all the target's processes per request, in µs; null when they are not ours to watch (--url).</param>
public sealed record LoadResult(string Target, string Operation, int Concurrency, long Requests, long Errors, TimeSpan Elapsed, double P50, double P99, double P999, double? CpuMicrosPerRequest = null)
{
    public double PerSecond => Requests / Elapsed.TotalSeconds;
}

/// <summary>
/// `actorha bench load`: HTTP writes of random keys among 10,000 with ~70-byte values (by default), spread over every node,
/// each durably acknowledged, then reads of the same keys; optionally the same load against a 3-node etcd
/// started from Debian's etcd-server on loopback, in the same run, through its JSON gateway.
/// </summary>
public sealed class LoadBenchmark(LoadOptions options, TextWriter output)
{
    public const int DefaultKeys = 10_000;
    public const int DefaultValueBytes = 70;
    public const double GoalWriteRatio = 1.5;
    public const double GoalReadsPerSecond = 10_000;
    private readonly byte[] _value = Encoding.ASCII.GetBytes(new string('v', options.ValueBytes));

    public async Task<IReadOnlyList<LoadResult>> RunAsync(CancellationToken ct)
    {
        var results = new List<LoadResult>();
        await using var cluster = options.Urls.Count > 0 ? null : await StartClusterAsync(ct);
        var urls = options.Urls.Count > 0 ? options.Urls : cluster!.Nodes.Select(n => n.HttpUrl).ToList();
        var pids = cluster?.Nodes.Select(n => n.Pid ?? 0).Where(p => p > 0).ToList() ?? [];
        output.WriteLine(options.MemoryJournal
            ? $"# load: {urls.Count} ActorHa nodes, journal IN MEMORY (snapshots in {options.StoreDescription}): writes are NOT durable; this run measures the ceiling of everything above the store, keys {options.Keys}, values {_value.Length} B, {options.Duration.TotalSeconds:0} s per phase"
            : $"# load: {urls.Count} ActorHa nodes, store {options.StoreDescription}: every acknowledged write is durable, keys {options.Keys}, values {_value.Length} B, {options.Duration.TotalSeconds:0} s per phase");
        if (pids.Count > 0)
        {
            // Before any load: what a node costs just for being a cluster member with its partitions started.
            output.WriteLine($"# idle RSS: {string.Join(", ", pids.Select(p => $"{ProcessStats.RssMiB(p):0} MiB"))}");
        }

        var target = new ActorHaTarget(urls, options.Keys);
        await PrefillAsync(target, ct);
        using var stopRouting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (options.RouteToOwners)
        {
            await target.RouteToOwnersAsync(stopRouting.Token);
            output.WriteLine($"# routing: owner (each request to the node owning its key's partition; {target.Routes!.Routed} of {target.Routes.PartitionCount} partitions routed, refreshed every 2 s)");
        }

        await WarmUpAsync("actorha", target, ct);
        output.WriteLine($"{"target",-8} {"op",-5} {"conc",4} {"req/s",9} {"p50 ms",7} {"p99 ms",7} {"p99.9",7} {"errors",6} {"cpu/op",7}  processes");
        foreach (var concurrency in options.Concurrency)
        {
            results.Add(await PhaseAsync("actorha", "put", concurrency, target, write: true, pids, ct));
        }

        foreach (var concurrency in options.Concurrency)
        {
            results.Add(await PhaseAsync("actorha", options.ReadRatio > 0 && options.ReadRatio < 1 ? "mixed" : "get", concurrency, target, write: false, pids, ct));
        }

        await stopRouting.CancelAsync();
        if (options.CompareEtcd)
        {
            await using var etcd = await EtcdCluster.StartAsync(Path.Combine(Path.GetFullPath(options.DataDir), "etcd"), output, ct);
            var etcdTarget = new EtcdTarget(etcd.ClientUrls);
            await PrefillAsync(etcdTarget, ct);
            await WarmUpAsync("etcd", etcdTarget, ct);
            foreach (var concurrency in options.Concurrency)
            {
                results.Add(await PhaseAsync("etcd", "put", concurrency, etcdTarget, write: true, etcd.Pids, ct));
            }

            foreach (var concurrency in options.Concurrency)
            {
                results.Add(await PhaseAsync("etcd", "get", concurrency, etcdTarget, write: false, etcd.Pids, ct));
            }

            foreach (var concurrency in options.Concurrency)
            {
                var a = results.First(r => r.Target == "actorha" && r.Operation == "put" && r.Concurrency == concurrency);
                var e = results.First(r => r.Target == "etcd" && r.Operation == "put" && r.Concurrency == concurrency);
                output.WriteLine($"{(options.MemoryJournal ? "writes (ActorHa's NOT durable: journal in memory)" : "durable writes")} at c={concurrency}: ActorHa/etcd = {a.PerSecond / e.PerSecond:0.00}x throughput ({a.PerSecond:0}/s vs {e.PerSecond:0}/s), p99 {a.P99:0.0} ms vs {e.P99:0.0} ms, CPU per write {Micros(a.CpuMicrosPerRequest)} vs {Micros(e.CpuMicrosPerRequest)}");
            }

            output.WriteLine(options.MemoryJournal
                ? "goal not evaluated: ActorHa's journal was in memory, so its writes were not durable (--journal memory measures a ceiling, not the product)"
                : Goal(results, options.Concurrency.Max()));
        }

        return results;
    }

    private static string Micros(double? value) => value is { } us ? $"{us:0} µs" : "-";

    /// <summary>
    /// The performance goal ActorHa holds itself to, checked on this run's figures at <paramref name="concurrency"/>:
    /// durable writes at 1.5× etcd's rate or more with a p99 no worse than etcd's, and 10,000 reads/s or more.
    /// </summary>
    public static string Goal(IReadOnlyList<LoadResult> results, int concurrency)
    {
        LoadResult? Find(string target, string op) => results.FirstOrDefault(r => r.Target == target && r.Operation == op && r.Concurrency == concurrency);
        var (a, e, reads) = (Find("actorha", "put"), Find("etcd", "put"), Find("actorha", "get"));
        // Judged on the figures as printed (whole requests/s, p99 to 0.1 ms), so anyone can check the verdict
        // against the table: a p99 that differs below the printed precision counts as equal.
        static double Printed(double value, string format) => double.Parse(value.ToString(format, CultureInfo.CurrentCulture), CultureInfo.CurrentCulture);
        var writes = a is null || e is null
            ? "writes not measured"
            : Printed(a.PerSecond, "0") >= GoalWriteRatio * Printed(e.PerSecond, "0") && Printed(a.P99, "0.0") <= Printed(e.P99, "0.0")
                ? "writes met"
                : $"writes not met ({a.PerSecond / e.PerSecond:0.00}x, p99 {a.P99:0.0} vs {e.P99:0.0} ms)";
        var read = reads is null ? "reads not measured" : Printed(reads.PerSecond, "0") >= GoalReadsPerSecond ? "reads met" : $"reads not met ({reads.PerSecond:0}/s)";
        return $"goal at c={concurrency} (durable writes >= {GoalWriteRatio}x etcd's with p99 no worse, reads >= {GoalReadsPerSecond:0}/s): {writes}, {read}";
    }

    private async Task<LocalCluster> StartClusterAsync(CancellationToken ct)
    {
        var cluster = new LocalCluster(LocalClusterOptions.OnFreePorts(options.Nodes, Path.Combine(Path.GetFullPath(options.DataDir), $"load-{DateTime.UtcNow:yyyyMMdd-HHmmss}")) with
        {
            Settings = options.MemoryJournal
                ? new Dictionary<string, string>(options.StoreSettings) { ["UnsafeMemoryJournal"] = "true" }
                : options.StoreSettings,
        });
        cluster.StartAll();
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);
        return cluster;
    }

    /// <summary>
    /// Writes every key once, so reads find values and writes are updates as in steady state. A write refused (large
    /// values at 32 at once can meet a node's MaxInFlightWriteBytes) is tried again: a key left out would count as a
    /// failed read in every read phase.
    /// </summary>
    private async Task PrefillAsync(ILoadTarget target, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        await Parallel.ForEachAsync(Enumerable.Range(0, options.Keys), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct },
            async (i, token) =>
            {
                while (!await TryPutAsync(i, token))
                {
                    if (DateTime.UtcNow > deadline)
                    {
                        throw new InvalidOperationException($"prefill: key {i} could not be written in 2 minutes");
                    }

                    await Task.Delay(100, token);
                }
            });

        async Task<bool> TryPutAsync(int key, CancellationToken token)
        {
            try
            {
                return await target.PutAsync(key, _value, key, token);
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Writes, then reads, at the highest concurrency for <see cref="LoadOptions.Warmup"/> each, not counted: a .NET node
    /// compiles its hot paths again with profile data during its first seconds under load (measured: the first
    /// 8 s phase at c=64 took 15–20 % fewer writes than the next one), and a benchmark of a server should
    /// measure the server, not its start. etcd gets the same warm-up.
    /// </summary>
    private async Task WarmUpAsync(string name, ILoadTarget target, CancellationToken ct)
    {
        if (options.Warmup <= TimeSpan.Zero)
        {
            return;
        }

        var concurrency = options.Concurrency.Max();
        var writes = await RunPhaseAsync(name, "put", concurrency, target, write: true, options.Warmup, ct);
        var reads = await RunPhaseAsync(name, "get", concurrency, target, write: false, options.Warmup, ct);
        var errors = writes.Errors + reads.Errors;
        output.WriteLine($"# warm-up of {name} (not counted): {options.Warmup.TotalSeconds:0.#} s of writes ({writes.PerSecond:0}/s), then {options.Warmup.TotalSeconds:0.#} s of reads ({reads.PerSecond:0}/s) at c={concurrency}" +
                         (errors > 0 ? $"; {errors} requests failed" : string.Empty));
    }

    private async Task<LoadResult> PhaseAsync(string name, string op, int concurrency, ILoadTarget target, bool write, IReadOnlyList<int> pids, CancellationToken ct)
    {
        var before = pids.Select(ProcessStats.Cpu).ToList();
        var result = await RunPhaseAsync(name, op, concurrency, target, write, options.Duration, ct);
        var seconds = result.Elapsed.TotalSeconds;
        var cpuSeconds = pids.Select((pid, i) => ProcessStats.Cpu(pid) - before[i]).ToList();
        var cpu = cpuSeconds.Select(c => c / seconds * 100).ToList();
        var rss = pids.Select(ProcessStats.RssMiB).ToList();
        if (pids.Count > 0 && result.Requests > 0)
        {
            result = result with { CpuMicrosPerRequest = cpuSeconds.Sum() / result.Requests * 1e6 };
        }

        var perRequest = Micros(result.CpuMicrosPerRequest);
        output.WriteLine($"{name,-8} {op,-5} {concurrency,4} {result.PerSecond,9:0} {result.P50,7:0.0} {result.P99,7:0.0} {result.P999,7:0.0} {result.Errors,6} {perRequest,7}  " +
                         string.Join("  ", cpu.Zip(rss, (c, r) => $"cpu {c:0}% rss {r:0} MiB")));
        if (_value.Length >= 64 * 1024)
        {
            output.WriteLine($"#   = {(result.Requests - result.Errors) / result.Elapsed.TotalSeconds * _value.Length / 1e6:0} MB/s of values in the {result.Requests - result.Errors} requests that succeeded");
        }

        return result;
    }

    private async Task<LoadResult> RunPhaseAsync(string name, string op, int concurrency, ILoadTarget target, bool write, TimeSpan duration, CancellationToken ct)
    {
        var latencies = new List<double>[concurrency];
        long errors = 0;
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(worker => Task.Run(async () =>
        {
            var mine = latencies[worker] = new List<double>(64 * 1024);
            var random = new Random(worker * 104_729 + (write ? 1 : 2));
            var n = 0;
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var key = random.Next(options.Keys);
                var isWrite = write || (options.ReadRatio < 1 && op == "mixed" && random.NextDouble() >= options.ReadRatio);
                var started = Stopwatch.GetTimestamp();
                bool ok;
                try
                {
                    ok = isWrite ? await target.PutAsync(key, _value, worker + n++, ct) : await target.GetAsync(key, worker + n++, ct);
                }
                catch (HttpRequestException)
                {
                    ok = false;
                }

                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (!ok)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }, ct)));
        clock.Stop();
        var all = latencies.SelectMany(l => l).Order().ToList();
        return new LoadResult(name, op, concurrency, all.Count, errors, clock.Elapsed,
            FailoverBenchmark.Percentile(all, 0.5), FailoverBenchmark.Percentile(all, 0.99), FailoverBenchmark.Percentile(all, 0.999));
    }

    private interface ILoadTarget
    {
        Task<bool> PutAsync(int key, byte[] value, int spread, CancellationToken ct);

        Task<bool> GetAsync(int key, int spread, CancellationToken ct);
    }

    private sealed class ActorHaTarget(IReadOnlyList<string> urls, int keys) : ILoadTarget
    {
        private readonly string[] _keys = Enumerable.Range(0, keys).Select(k => $"bench-{k}").ToArray();
        private readonly HttpClient _http = NodeHttp.Create(TimeSpan.FromSeconds(30), maxConnectionsPerServer: 256);

        public OwnerRoutes? Routes { get; private set; }

        /// <summary>Sends each key to its owner from now on, following moves with a fresh snapshot every 2 s until <paramref name="ct"/> ends.</summary>
        public async Task RouteToOwnersAsync(CancellationToken ct)
        {
            var clients = urls.Select(u => ActorHaClient.For(u, TimeSpan.FromSeconds(5))).ToArray();
            Routes = await OwnerRoutes.FetchAsync(clients[0], ct);
            _ = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
                while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
                {
                    try
                    {
                        Routes = await OwnerRoutes.FetchAsync(clients[Random.Shared.Next(clients.Length)], ct).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
                    {
                        // Keep the last routes: a stale route only costs a hop.
                    }
                }
            }, ct).ContinueWith(static t => t.Exception, TaskScheduler.Default);
        }

        private string UrlFor(int key, int spread) => Routes?.UrlFor(_keys[key]) ?? urls[spread % urls.Count];

        public async Task<bool> PutAsync(int key, byte[] value, int spread, CancellationToken ct)
        {
            // As ActorHaClient sends large values: a write the node turns away is answered before the value is sent.
            using var request = new HttpRequestMessage(HttpMethod.Put, $"{UrlFor(key, spread)}/v1/kv/{_keys[key]}") { Content = new ByteArrayContent(value) };
            if (value.Length >= ActorHaClient.ExpectContinueFromBytes)
            {
                request.Headers.ExpectContinue = true;
            }

            using var response = await _http.SendAsync(request, ct);
            return response.IsSuccessStatusCode;
        }

        public async Task<bool> GetAsync(int key, int spread, CancellationToken ct)
        {
            using var response = await _http.GetAsync($"{UrlFor(key, spread)}/v1/kv/{_keys[key]}", ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }
    }

    /// <summary>etcd v3 through its JSON gateway: the same HTTP/JSON path a client without gRPC uses.</summary>
    private sealed class EtcdTarget(IReadOnlyList<string> urls) : ILoadTarget
    {
        private readonly HttpClient _http = NodeHttp.Create(TimeSpan.FromSeconds(30), maxConnectionsPerServer: 256);

        public async Task<bool> PutAsync(int key, byte[] value, int spread, CancellationToken ct)
        {
            var body = $"{{\"key\":\"{B64($"bench-{key}")}\",\"value\":\"{Convert.ToBase64String(value)}\"}}";
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await _http.PostAsync($"{urls[spread % urls.Count]}/v3/kv/put", content, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }

        public async Task<bool> GetAsync(int key, int spread, CancellationToken ct)
        {
            // Linearizable reads (etcd's default), as ActorHa's are.
            using var content = new StringContent($"{{\"key\":\"{B64($"bench-{key}")}\"}}", Encoding.UTF8, "application/json");
            using var response = await _http.PostAsync($"{urls[spread % urls.Count]}/v3/kv/range", content, ct);
            await response.Content.ReadAsByteArrayAsync(ct);
            return response.IsSuccessStatusCode;
        }

        private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));
    }
}

/// <summary>CPU seconds and resident memory of a process, from /proc.</summary>
public static class ProcessStats
{
    public static double Cpu(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
            return (double.Parse(fields[11], CultureInfo.InvariantCulture) + double.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public static double RssMiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}

/// <summary>A 3-member etcd on loopback from Debian's etcd-server, for comparison in the same run.</summary>
public sealed class EtcdCluster : IAsyncDisposable
{
    private readonly List<Process> _processes = [];

    private EtcdCluster(IReadOnlyList<string> clientUrls) => ClientUrls = clientUrls;

    public IReadOnlyList<string> ClientUrls { get; }

    public IReadOnlyList<int> Pids => _processes.Where(p => !p.HasExited).Select(p => p.Id).ToList();

    /// <summary>Where etcd is installed; null when it is not.</summary>
    public static string? Executable => new[] { "/usr/bin/etcd", "/usr/local/bin/etcd" }.FirstOrDefault(File.Exists);

    public const string NotInstalled = "--compare-etcd needs etcd: install Debian's etcd-server (apt-get install etcd-server).";

    public static async Task<EtcdCluster> StartAsync(string dataDir, TextWriter output, CancellationToken ct)
    {
        var etcd = Executable ?? throw new FileNotFoundException(NotInstalled);
        var client = Ports.FindFreeRange(3);
        var peer = Ports.FindFreeRange(3);
        var cluster = new EtcdCluster(Enumerable.Range(0, 3).Select(i => $"http://127.0.0.1:{client + i}").ToList());
        var initial = string.Join(',', Enumerable.Range(0, 3).Select(i => $"e{i}=http://127.0.0.1:{peer + i}"));
        if (Directory.Exists(dataDir))
        {
            Directory.Delete(dataDir, recursive: true);
        }

        for (var i = 0; i < 3; i++)
        {
            var psi = new ProcessStartInfo(etcd) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[]
                     {
                         "--name", $"e{i}", "--data-dir", Path.Combine(dataDir, $"e{i}"),
                         "--listen-client-urls", cluster.ClientUrls[i], "--advertise-client-urls", cluster.ClientUrls[i],
                         "--listen-peer-urls", $"http://127.0.0.1:{peer + i}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer + i}",
                         "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "actorha-bench",
                         "--log-level", "error",
                     })
            {
                psi.ArgumentList.Add(arg);
            }

            psi.Environment["ETCD_UNSUPPORTED_ARCH"] = "amd64";
            var process = Process.Start(psi)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            cluster._processes.Add(process);
        }

        using var http = NodeHttp.Create(TimeSpan.FromSeconds(2));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                var healthy = await Task.WhenAll(cluster.ClientUrls.Select(async u => (await http.GetAsync($"{u}/health", ct)).StatusCode == HttpStatusCode.OK));
                if (healthy.All(h => h))
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
                // not up yet
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                // not up yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("etcd did not become healthy within 60 s.");
            }

            await Task.Delay(250, ct);
        }

        var version = await http.GetStringAsync($"{cluster.ClientUrls[0]}/version", ct);
        output.WriteLine($"# etcd: 3 members on loopback, {JsonDocument.Parse(version).RootElement.GetProperty("etcdserver").GetString()}, default durability (fsync per commit), JSON gateway");
        return cluster;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes.Where(p => !p.HasExited))
        {
            process.Kill();
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }
}
