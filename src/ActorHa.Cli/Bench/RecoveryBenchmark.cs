using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ActorHa.Domain;
using ActorHa.Launcher;

namespace ActorHa.Cli.Bench;

public sealed record RecoveryOptions(int Events, int SnapshotEvery, int Keys, string DataDir);

public sealed record RecoveryResult(string Mode, int Events, double WritesPerSecond, double RecoveryMs, double FirstReadMs);

/// <summary>
/// `actorha bench recovery`: how long one partition with many events takes to recover, with and without
/// snapshots. A one-node cluster takes <see cref="RecoveryOptions.Events"/> durable writes into partition 0,
/// is killed -9 and started again; the partition's own log line gives its recovery time, and the time from
/// the restart to the first successful read of one of its keys is measured from outside.
/// </summary>
public sealed partial class RecoveryBenchmark(RecoveryOptions options, TextWriter output)
{
    public async Task<IReadOnlyList<RecoveryResult>> RunAsync(CancellationToken ct)
    {
        var map = new PartitionMap(PartitionMap.DefaultPartitionCount);
        var keys = Enumerable.Range(0, 1_000_000).Select(i => $"recovery/{i}").Where(k => map.For(k).Value == 0).Take(options.Keys).ToList();
        output.WriteLine($"# recovery benchmark: 1 node, {options.Events:N0} events in partition 0 over {keys.Count} keys, SQLite WAL synchronous=FULL");
        output.WriteLine("mode                          events   writes/s   recovery   first read after restart");
        var results = new List<RecoveryResult>();
        foreach (var (mode, snapshotEvery) in new[] { ($"snapshot every {options.SnapshotEvery}", options.SnapshotEvery), ("no snapshots", int.MaxValue) })
        {
            var dir = Path.Combine(Path.GetFullPath(options.DataDir), $"recovery-{snapshotEvery}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
            await using var cluster = new LocalCluster(LocalClusterOptions.OnFreePorts(1, dir) with
            {
                Settings = new Dictionary<string, string> { ["SnapshotEvery"] = snapshotEvery.ToString(CultureInfo.InvariantCulture) },
            });
            cluster.StartAll();
            await cluster.WaitUntilReadyAsync(TimeSpan.FromSeconds(120), ct);
            var node = cluster[1];

            var clock = Stopwatch.StartNew();
            var next = -1;
            await Task.WhenAll(Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < options.Events)
                {
                    var outcome = await node.Client.PutAsync(keys[i % keys.Count], Encoding.UTF8.GetBytes($"value-{i}-0123456789012345678901234567890123456789012345678901234567"), ct: ct);
                    if (!outcome.IsSuccess)
                    {
                        throw new InvalidOperationException($"write {i} failed: {(int)outcome.Status} {outcome.Problem?.Detail}");
                    }
                }
            }, ct)));
            var writesPerSecond = options.Events / clock.Elapsed.TotalSeconds;

            cluster.Kill(1);
            var restart = Stopwatch.StartNew();
            cluster.Start(1);
            double firstRead;
            while (true)
            {
                try
                {
                    var read = await node.Client.GetAsync(keys[0], ct);
                    if (read.IsSuccess)
                    {
                        firstRead = restart.Elapsed.TotalMilliseconds;
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                if (restart.Elapsed > TimeSpan.FromMinutes(5))
                {
                    throw new TimeoutException("the partition did not serve within 5 minutes of the restart");
                }

                await Task.Delay(20, ct);
            }

            // The partition's own account of its recovery, from the restarted process's log.
            var log = File.ReadAllText(node.LogFile);
            var lastStart = log.LastIndexOf("starting node1", StringComparison.Ordinal);
            var match = Recovered().Match(log, Math.Max(0, lastStart));
            var recoveryMs = match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
            var result = new RecoveryResult(mode, options.Events, writesPerSecond, recoveryMs, firstRead);
            results.Add(result);
            output.WriteLine($"{mode,-28} {result.Events,8:N0} {result.WritesPerSecond,10:N0} {result.RecoveryMs,8:N0} ms   {result.FirstReadMs,8:N0} ms");
        }

        return results;
    }

    [GeneratedRegex(@"Partition 0 recovered \d+ keys at sequence number \d+ in (\d+) ms")]
    private static partial Regex Recovered();
}
