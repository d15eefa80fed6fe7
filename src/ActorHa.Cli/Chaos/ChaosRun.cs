using System.Diagnostics;
using System.Globalization;
using ActorHa.Checker;
using ActorHa.Launcher;
using ActorHa.Launcher.Workload;

namespace ActorHa.Cli.Chaos;

public sealed record ChaosOptions(int Nodes, TimeSpan Duration, IReadOnlyList<string> Faults, int Seed, int Clients, string DataDir,
    IReadOnlyDictionary<string, string> StoreSettings, string StoreDescription, bool Settle = false);

/// <summary>
/// `actorha chaos`: concurrent clients doing writes, compare-and-sets and reads on a few hot keys and many
/// cold keys through every node, while faults (kill -9 then restart, SIGSTOP then SIGCONT, a network
/// partition that cuts one node off from the others then heals) hit random nodes at random intervals. The history goes to a JSON-lines file and through <see cref="HistoryChecker"/>.
/// Everything random comes from the seed, so a run's fault schedule and workload can be replayed.
/// </summary>
public sealed class ChaosRun(ChaosOptions options, TextWriter output)
{
    public static readonly string[] SupportedFaults = ["kill", "pause", "partition"];

    /// <summary>How long <c>--settle</c> waits for the cluster to recover before it injects the next fault anyway.</summary>
    public static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(30);

    public async Task<int> RunAsync(CancellationToken ct)
    {
        var unsupported = options.Faults.Except(SupportedFaults).ToList();
        if (unsupported.Count > 0)
        {
            await Console.Error.WriteLineAsync($"actorha chaos: unknown fault(s): {string.Join(", ", unsupported)} (supported: {string.Join(", ", SupportedFaults)}).");
            return 2;
        }

        var dataDir = Path.Combine(Path.GetFullPath(options.DataDir), $"chaos-{options.Seed}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        await using var cluster = new LocalCluster(LocalClusterOptions.OnFreePorts(options.Nodes, dataDir) with
        {
            Settings = options.StoreSettings,
            FaultInjection = options.Faults.Contains("partition"),
        });
        output.WriteLine($"# chaos: {options.Nodes} nodes, {options.Duration.TotalSeconds:0} s, faults {string.Join(",", options.Faults)}, seed {options.Seed}, {options.Clients} clients, store {options.StoreDescription}, data {dataDir}");
        if (options.Settle)
        {
            output.WriteLine($"# settle: before each fault, wait until every node is an Up member and every partition has an owner (at most {SettleTimeout.TotalSeconds:0} s)");
        }

        cluster.StartAll();
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);

        var workload = new RegisterWorkload(cluster, options.Seed);
        using var stop = new CancellationTokenSource(options.Duration);
        var clients = workload.RunAsync(options.Clients, stop.Token);
        var faults = await InjectFaultsAsync(cluster, stop.Token);
        await clients;
        var duringFaults = workload.History.ToList();

        output.WriteLine($"# healing: heal the network, kill -9 every node (frozen ones included) and start them all again, then read every key back");
        await HealAsync(cluster);
        await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);
        var unreadKeys = await workload.FinalReadsAsync(ct);
        foreach (var read in unreadKeys)
        {
            output.WriteLine($"#   final read of {read.Key} still unknown after {RegisterWorkload.FinalReadAttempts} attempts: its last writes go unchecked");
        }

        var historyFile = Path.Combine(dataDir, "history.jsonl");
        HistoryFile.Write(historyFile, workload.History.OrderBy(o => o.Start));
        var result = workload.Check();
        output.WriteLine($"operations {result.Operations}: ok {result.Ok}, failed {result.Failed}, indeterminate {result.Indeterminate}");
        var unknownWrites = workload.History.Count(o => o.IsWrite && o.Result == OpResult.Info);
        output.WriteLine($"writes whose outcome stayed unknown after {workload.RetryUnknownWritesFor.TotalSeconds:0} s of retries with their Idempotency-Key: {unknownWrites}");
        output.WriteLine($"final reads whose outcome stayed unknown (keys not read back): {unreadKeys.Count}");
        if (Availability.LongestStretchWithoutAnAcknowledgement(duringFaults) is { } stretch)
        {
            var runStart = duringFaults.Min(o => o.Start);
            static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"longest stretch without an acknowledged operation: {Seconds(stretch.To - stretch.From):0.0} s (from {Seconds(stretch.From - runStart):0.0} s to {Seconds(stretch.To - runStart):0.0} s into the run)"));
        }

        output.WriteLine($"faults injected {faults.Count}: {string.Join(", ", faults.GroupBy(f => f).Select(g => $"{g.Key} {g.Count()}"))}");
        output.WriteLine($"history {historyFile}");
        output.WriteLine($"violations {result.Violations.Count}");
        foreach (var violation in result.Violations.Take(20))
        {
            output.WriteLine($"  {violation.Kind} {violation.Key}: {violation.Detail}");
        }

        if (!result.IsValid)
        {
            return 1;
        }

        // No violation, but not a pass either: a key the healed, restarted cluster never answered for went unchecked,
        // and a cluster that cannot serve a key after every node restarted has failed at its job.
        if (unreadKeys.Count > 0)
        {
            output.WriteLine($"inconclusive: {unreadKeys.Count} key(s) not read back after the cluster healed and restarted");
            return 3;
        }

        return 0;
    }

    /// <summary>
    /// Random faults on random nodes until the run ends: a killed node is restarted, a frozen one thawed, a
    /// cut-off one reconnected. A node the split-brain resolver downed meanwhile has exited and is restarted
    /// before the next fault.
    /// </summary>
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
                if (options.Settle)
                {
                    await SettleAsync(cluster, stop);
                }

                var running = cluster.Nodes.Where(n => n.IsRunning).ToList();
                // Keep a majority alive, so the cluster can make progress and the history stays interesting.
                if (running.Count <= options.Nodes / 2 + 1 && options.Nodes > 1)
                {
                    continue;
                }

                var victim = running[random.Next(running.Count)];
                var fault = options.Faults[random.Next(options.Faults.Count)];
                var length = TimeSpan.FromMilliseconds(random.Next(500, 3000));
                output.WriteLine($"#   {ClockNow()} {fault} {victim.Name} for {length.TotalSeconds:0.0} s");
                injected.Add(fault);
                switch (fault)
                {
                    case "kill":
                        cluster.Kill(victim.Index);
                        await Task.Delay(length, CancellationToken.None);
                        cluster.Start(victim.Index);
                        break;
                    case "pause":
                        cluster.Freeze(victim.Index);
                        await Task.Delay(length, CancellationToken.None);
                        cluster.Thaw(victim.Index);
                        break;
                    default:
                        // The victim alone on one side, clients still reaching it: the minority side of a split.
                        var others = cluster.Nodes.Where(n => n != victim && n.IsRunning).Select(n => n.Index).ToList();
                        await cluster.SplitAsync([victim.Index], others, CancellationToken.None);
                        await Task.Delay(length, CancellationToken.None);
                        await cluster.HealAsync(CancellationToken.None);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The run is over.
        }

        return injected;
    }

    /// <summary>
    /// <c>--settle</c>: one fault at a time. Waits until the cluster has recovered from the last fault (every node an Up
    /// member, every partition owned), restarting nodes that exit meanwhile (a node downed late), so each fault hits a
    /// whole cluster and the run's longest stretch without an acknowledgement measures single faults. Gives up after
    /// <see cref="SettleTimeout"/> and says so: a cluster that does not recover from one fault is itself a finding.
    /// </summary>
    private async Task SettleAsync(LocalCluster cluster, CancellationToken stop)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            RestartExited(cluster);
            var left = SettleTimeout - watch.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#   {ClockNow()} not settled after {SettleTimeout.TotalSeconds:0} s; the next fault goes ahead"));
                return;
            }

            try
            {
                await cluster.WaitUntilReadyAsync(left < TimeSpan.FromSeconds(2) ? left : TimeSpan.FromSeconds(2), stop);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#   {ClockNow()} settled after {watch.Elapsed.TotalSeconds:0.0} s"));
                return;
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or HttpRequestException && !stop.IsCancellationRequested)
            {
                // Not yet: a node still joining, a partition still moving, or a node that exited and is started above.
            }
        }
    }

    private static string ClockNow() => DateTime.UtcNow.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static void RestartExited(LocalCluster cluster)
    {
        foreach (var node in cluster.Nodes.Where(n => n.Process is { HasExited: true }))
        {
            cluster.Start(node.Index);
        }
    }

    /// <summary>
    /// Heals the network, then kills every node with SIGKILL (frozen ones included) and starts them all again: the final
    /// reads check every acknowledged write after a restart of the whole cluster, nodes the faults never touched
    /// included, and a node that was downed meanwhile comes back with the rest.
    /// </summary>
    private async Task HealAsync(LocalCluster cluster)
    {
        if (options.Faults.Contains("partition"))
        {
            await cluster.HealAsync();
        }

        // SIGKILL ends a frozen process too; a node that exits on its own meanwhile (downed) is simply started.
        foreach (var node in cluster.Nodes.Where(n => n.IsRunning))
        {
            try
            {
                cluster.Kill(node.Index);
            }
            catch (InvalidOperationException) when (!node.IsRunning)
            {
                // It exited between the check and the signal.
            }
        }

        foreach (var node in cluster.Nodes)
        {
            cluster.Start(node.Index);
        }
    }
}
