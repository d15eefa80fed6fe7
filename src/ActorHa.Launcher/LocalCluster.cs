using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ActorHa.Client;

namespace ActorHa.Launcher;

public sealed record LocalClusterOptions
{
    public int Nodes { get; init; } = 3;

    public int BaseHttpPort { get; init; } = 8081;

    public int BaseAkkaPort { get; init; } = 4051;

    public string Host { get; init; } = "127.0.0.1";

    public string DataDir { get; init; } = "data";

    public int Partitions { get; init; } = 32;

    /// <summary>The node program (actorha.dll); defaults to the program that is running.</summary>
    public string? NodeProgram { get; init; }

    /// <summary>Extra ActorHa settings for every node, as configuration keys (e.g. "ActorHa:SnapshotEvery").</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Nodes route remoting through Akka.Remote's throttler and expose /v1/faults, so <see cref="LocalCluster.BlackholeAsync"/>
    /// can cut links between them. For specs and chaos runs only.
    /// </summary>
    public bool FaultInjection { get; init; }

    /// <summary>A cluster on ports free right now, so benchmarks and chaos runs never collide with `actorha up`.</summary>
    public static LocalClusterOptions OnFreePorts(int nodes, string dataDir) => new()
    {
        Nodes = nodes,
        BaseHttpPort = Ports.FindFreeRange(nodes),
        BaseAkkaPort = Ports.FindFreeRange(nodes),
        DataDir = dataDir,
    };
}

/// <summary>One node process of a <see cref="LocalCluster"/>.</summary>
public sealed class LocalNode
{
    internal LocalNode(int index, string httpUrl, int akkaPort, string logFile)
    {
        Index = index;
        HttpUrl = httpUrl;
        AkkaPort = akkaPort;
        LogFile = logFile;
        Client = ActorHaClient.For(httpUrl, TimeSpan.FromSeconds(15));
    }

    public int Index { get; }

    public string Name => $"node{Index}";

    public string HttpUrl { get; }

    public int AkkaPort { get; }

    public string LogFile { get; }

    public ActorHaClient Client { get; }

    public Process? Process { get; internal set; }

    public int? Pid => Process is { HasExited: false } p ? p.Id : null;

    public bool IsRunning => Process is { HasExited: false };
}

/// <summary>
/// A cluster of real node processes on this machine: what `actorha up`, the benchmarks and the multi-node
/// specs all use, so process handling (start, wait for ready, kill -9, SIGSTOP/SIGCONT, SIGTERM) is written once.
/// Each node logs to {DataDir}/logs/nodeN.log.
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly LocalClusterOptions _options;
    private readonly string _program;

    public LocalCluster(LocalClusterOptions options)
    {
        // Said plainly here rather than as a UriFormatException from the node URLs or a failure in Ports.IsFree.
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Nodes, 1, nameof(options.Nodes));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BaseHttpPort, 1, nameof(options.BaseHttpPort));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.BaseHttpPort, Ports.Max - options.Nodes + 1, nameof(options.BaseHttpPort));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BaseAkkaPort, 1, nameof(options.BaseAkkaPort));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.BaseAkkaPort, Ports.Max - options.Nodes + 1, nameof(options.BaseAkkaPort));
        _options = options;
        _program = Path.GetFullPath(options.NodeProgram ?? DefaultNodeProgram());
        if (!File.Exists(_program))
        {
            throw new FileNotFoundException($"The node program '{_program}' does not exist; build src/ActorHa.Cli first.", _program);
        }

        DataDir = Path.GetFullPath(options.DataDir);
        Directory.CreateDirectory(Path.Combine(DataDir, "logs"));
        Nodes = Enumerable.Range(1, options.Nodes)
            .Select(i => new LocalNode(
                i,
                $"http://{options.Host}:{options.BaseHttpPort + i - 1}",
                options.BaseAkkaPort + i - 1,
                Path.Combine(DataDir, "logs", $"node{i}.log")))
            .ToList();
    }

    public string DataDir { get; }

    public IReadOnlyList<LocalNode> Nodes { get; }

    public LocalNode this[int index] => Nodes[index - 1];

    public static string DefaultNodeProgram() =>
        System.Reflection.Assembly.GetEntryAssembly()?.Location is { Length: > 0 } entry && Path.GetFileName(entry) == "actorha.dll"
            ? entry
            : Path.Combine(AppContext.BaseDirectory, "actorha.dll");

    public void StartAll()
    {
        // A node that cannot bind exits, but an old cluster on the same ports would answer our readiness
        // probes in its place: refuse up front instead.
        var busy = Nodes.Where(n => !n.IsRunning)
            .SelectMany(n => new[] { new Uri(n.HttpUrl).Port, n.AkkaPort })
            .Where(p => !Ports.IsFree(p))
            .ToList();
        if (busy.Count > 0)
        {
            throw new InvalidOperationException($"Port(s) {string.Join(", ", busy)} already in use (another cluster running?). Stop it or choose other base ports.");
        }

        foreach (var node in Nodes)
        {
            Start(node.Index);
        }
    }

    /// <summary>Starts (or restarts) node i on its fixed ports, so a restart is the same node to its peers.</summary>
    public LocalNode Start(int index)
    {
        var node = this[index];
        if (node.IsRunning)
        {
            throw new InvalidOperationException($"{node.Name} is already running (pid {node.Pid}).");
        }

        var psi = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = DataDir,
        };
        psi.ArgumentList.Add(_program);
        psi.ArgumentList.Add("node");
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["Host"] = _options.Host,
            ["Port"] = node.AkkaPort.ToString(CultureInfo.InvariantCulture),
            ["HttpUrl"] = node.HttpUrl,
            ["DataDir"] = DataDir,
            ["Partitions"] = _options.Partitions.ToString(CultureInfo.InvariantCulture),
            // The first formation waits for every node, so the coordinator spreads partitions over all of them.
            ["MinMembers"] = Nodes.Count.ToString(CultureInfo.InvariantCulture),
        };
        for (var i = 0; i < Nodes.Count; i++)
        {
            settings[$"Seeds:{i}"] = $"{_options.Host}:{Nodes[i].AkkaPort}";
        }

        if (_options.FaultInjection)
        {
            settings["FaultInjection"] = "true";
        }

        foreach (var (key, value) in _options.Settings)
        {
            settings[key.StartsWith("ActorHa:", StringComparison.OrdinalIgnoreCase) ? key["ActorHa:".Length..] : key] = value;
        }

        // Environment variables, exactly as a container would configure a node.
        foreach (var (key, value) in settings)
        {
            psi.Environment["ACTORHA__" + key.Replace(":", "__", StringComparison.Ordinal).ToUpperInvariant()] = value;
        }

        // Test hosts export their own logging levels; a node's log must not depend on who started it.
        psi.Environment["Logging__LogLevel__Default"] = "Information";
        psi.Environment["DOTNET_gcServer"] = "0";

        var log = new NodeLog(node.LogFile);
        log.Append($"==== {DateTimeOffset.UtcNow:O} starting {node.Name} ====");
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => log.Append(e.Data);
        process.ErrorDataReceived += (_, e) => log.Append(e.Data);
        process.Exited += (_, _) => log.Append($"==== {DateTimeOffset.UtcNow:O} {node.Name} exited ====");
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        node.Process = process;
        return node;
    }

    /// <summary>kill -9: the process dies without leaving the cluster.</summary>
    public void Kill(int index) => Signal(index, Signals.SigKill, waitForExit: true);

    /// <summary>SIGSTOP: the process freezes (a long GC pause, a stalled VM), holding its sockets open.</summary>
    public void Freeze(int index) => Signal(index, Signals.SigStop, waitForExit: false);

    /// <summary>
    /// SIGCONT after <see cref="Freeze"/>. Nothing to do when the process has exited meanwhile: a survivor ends a node
    /// that stays stopped after the cluster downed it (the nodes' fence, on by default).
    /// </summary>
    public void Thaw(int index)
    {
        if (this[index].Process is { HasExited: false } process)
        {
            Signals.Send(process.Id, Signals.SigCont);
        }
    }

    /// <summary>SIGTERM: the node runs its coordinated shutdown, hands off its partitions and leaves.</summary>
    public async Task StopAsync(int index, TimeSpan timeout)
    {
        var node = this[index];
        if (node.Process is not { HasExited: false } process)
        {
            return;
        }

        Signals.Send(process.Id, Signals.SigTerm);
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Signals.Send(process.Id, Signals.SigKill);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Cuts the network between nodes a and b, both ways: each drops all remoting traffic from and to the
    /// other (heartbeats included), while both stay reachable over HTTP and both still reach the database.
    /// Needs <see cref="LocalClusterOptions.FaultInjection"/>.
    /// </summary>
    public async Task BlackholeAsync(int a, int b, CancellationToken ct = default)
    {
        // Both ends, as Akka's TestConductor does: a one-sided cut would still let the other side's messages in.
        await SetLinkAsync(this[a], this[b], cut: true, ct).ConfigureAwait(false);
        await SetLinkAsync(this[b], this[a], cut: true, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Cuts node <paramref name="at"/>'s link to <paramref name="peer"/> at <paramref name="at"/>'s end only: there,
    /// remoting drops what comes from the peer and sends it nothing. Needs only <paramref name="at"/> to run, so a
    /// peer that is down restarts into the cut. <see cref="HealAsync"/> restores it.
    /// </summary>
    public Task CutLinkAtAsync(int at, int peer, CancellationToken ct = default) => SetLinkAsync(this[at], this[peer], cut: true, ct);

    /// <summary>Cuts every link between the two groups of nodes (a network split).</summary>
    public async Task SplitAsync(IReadOnlyCollection<int> side, IReadOnlyCollection<int> otherSide, CancellationToken ct = default)
    {
        foreach (var a in side)
        {
            foreach (var b in otherSide)
            {
                await BlackholeAsync(a, b, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Restores every cut link on every running node.</summary>
    public async Task HealAsync(CancellationToken ct = default)
    {
        foreach (var node in Nodes.Where(n => n.IsRunning))
        {
            // A node downed by the split may exit meanwhile: a restarted process starts with no cut.
            await SendFaultCommandAsync(node, HttpMethod.Delete, new Uri($"{node.HttpUrl}/v1/faults/network/"), "heal its links", maxAttempts: 20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until every running node answers ready and one node sees all members Up and every partition owned.</summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        string last = "no node answered yet";
        try
        {
            while (true)
            {
                var running = Nodes.Where(n => n.IsRunning).ToList();
                var exited = Nodes.FirstOrDefault(n => n.Process is { HasExited: true });
                if (exited is not null)
                {
                    throw new InvalidOperationException($"{exited.Name} exited with code {exited.Process!.ExitCode} before the cluster was ready; see {exited.LogFile}:{Environment.NewLine}{Tail(exited.LogFile, 15)}");
                }

                var ready = await Task.WhenAll(running.Select(n => n.Client.IsReadyAsync(cts.Token))).ConfigureAwait(false);
                if (ready.All(r => r))
                {
                    var status = await ClusterStatusAsync(running[0], cts.Token).ConfigureAwait(false);
                    if (status.UpMembers == running.Count && status.UnownedPartitions == 0)
                    {
                        return;
                    }

                    last = $"{status.UpMembers}/{running.Count} members Up, {status.UnownedPartitions} partitions without an owner";
                }
                else
                {
                    last = $"ready: {string.Join(", ", running.Zip(ready, (n, r) => $"{n.Name}={(r ? "yes" : "no")}"))}";
                }

                await Task.Delay(250, cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"The cluster was not ready within {timeout.TotalSeconds:0} s ({last}). Logs: {Path.Combine(DataDir, "logs")}");
        }
    }

    public static async Task<(int UpMembers, int UnownedPartitions)> ClusterStatusAsync(LocalNode node, CancellationToken ct)
    {
        try
        {
            using var doc = await node.Client.ClusterAsync(ct).ConfigureAwait(false);
            var up = doc.RootElement.GetProperty("members").EnumerateArray().Count(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean());
            var unowned = doc.RootElement.GetProperty("partitions").EnumerateArray().Count(p => p.GetProperty("owner").ValueKind == JsonValueKind.Null);
            return (up, unowned);
        }
        catch (HttpRequestException)
        {
            return (0, int.MaxValue);
        }
    }

    /// <summary>
    /// Stops the running nodes gracefully one at a time, the youngest first (the highest index, as nodes start in order).
    /// Each then leaves a cluster that still has members to take its partitions, and the last leaves alone, at once:
    /// measured 1.45 s for three nodes. Stopped all together, the last one waited out hand-over retries to members
    /// that had already gone, 3–10 s.
    /// </summary>
    public async Task StopOneByOneAsync(TimeSpan timeoutEach)
    {
        foreach (var node in Nodes.Where(n => n.IsRunning).Reverse().ToList())
        {
            await StopAsync(node.Index, timeoutEach).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(Nodes.Where(n => n.IsRunning).Select(n => StopAsync(n.Index, TimeSpan.FromSeconds(20)))).ConfigureAwait(false);
        foreach (var node in Nodes)
        {
            node.Process?.Dispose();
        }
    }

    public static string Tail(string file, int lines)
    {
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "";
        }
    }

    private void Signal(int index, int signal, bool waitForExit)
    {
        var node = this[index];
        if (node.Process is not { HasExited: false } process)
        {
            throw new InvalidOperationException($"{node.Name} is not running.");
        }

        Signals.Send(process.Id, signal);
        if (waitForExit)
        {
            process.WaitForExit();
        }
    }

    private static readonly HttpClient FaultHttp = new() { Timeout = TimeSpan.FromSeconds(10) };

    private async Task SetLinkAsync(LocalNode on, LocalNode peer, bool cut, CancellationToken ct)
    {
        if (!_options.FaultInjection)
        {
            throw new InvalidOperationException("Network faults need a cluster started with FaultInjection = true.");
        }

        var uri = new Uri($"{on.HttpUrl}/v1/faults/network/{_options.Host}:{peer.AkkaPort}");
        await SendFaultCommandAsync(on, cut ? HttpMethod.Put : HttpMethod.Delete, uri, $"{(cut ? "cut" : "heal")} its link to {peer.Name}", maxAttempts: 40, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// One /v1/faults command, retried while the node cannot take it yet: a node restarted a moment ago opens
    /// its HTTP port a few seconds after its process starts, and a downed one answers 503 or closes the port
    /// while it shuts down. Once the node has exited there is nothing left to change, so that is not an error.
    /// </summary>
    private static async Task SendFaultCommandAsync(LocalNode node, HttpMethod method, Uri uri, string what, int maxAttempts, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage? response = null;
            try
            {
                using var request = new HttpRequestMessage(method, uri);
                response = await FaultHttp.SendAsync(request, ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }

                if (response.StatusCode != System.Net.HttpStatusCode.ServiceUnavailable || attempt >= maxAttempts)
                {
                    throw new InvalidOperationException($"{node.Name} refused to {what}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested && attempt < maxAttempts)
            {
                // Not listening (yet, or any more): look again below.
            }
            finally
            {
                response?.Dispose();
            }

            await Task.Delay(250, ct).ConfigureAwait(false);
            if (!node.IsRunning)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A node's log file. A line that cannot be written is dropped: the log usually sits on the disk of the store, and
    /// when that disk filled up, the launcher's write failed on the process's output thread and took the launcher down,
    /// leaving its nodes running with nobody to log them, report their exit or stop them.
    /// </summary>
    private sealed class NodeLog(string path)
    {
        private readonly StreamWriter _writer = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        private bool _failing;

        public void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_writer)
            {
                try
                {
                    _writer.WriteLine(line);
                    if (_failing)
                    {
                        _failing = false;
                        Console.Error.WriteLine($"actorha: writing {path} works again");
                    }
                }
                catch (IOException e)
                {
                    if (!_failing)
                    {
                        _failing = true;
                        Console.Error.WriteLine($"actorha: cannot write {path} ({e.Message}); the node keeps running, its lines are dropped until writing works again");
                    }
                }
                catch (ObjectDisposedException)
                {
                    // The launcher is shutting down; the node's last lines are not worth a crash.
                }
            }
        }
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)
            ? host
            : Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
}
