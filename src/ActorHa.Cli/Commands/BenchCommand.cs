using System.CommandLine;
using ActorHa.Cli.Bench;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha bench …`: benchmarks that print figures (never timed unit tests).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks on a local cluster of real processes.");
        bench.Subcommands.Add(Failover());
        bench.Subcommands.Add(Load());
        bench.Subcommands.Add(Recovery());
        return bench;
    }

    private static Command Recovery()
    {
        var events = CliOptions.Int("--events", "Events written into the measured partition.", 1, int.MaxValue, 100_000);
        var snapshotEvery = CliOptions.Int("--snapshot-every", "Snapshot interval of the run with snapshots (the other run takes none).", 1, int.MaxValue, 1000);
        var keys = CliOptions.Int("--keys", "Distinct keys in the partition.", 1, 10_000, 1000);
        var dataDir = new Option<string>("--data-dir") { Description = "Where the benchmark node keeps its store and logs.", DefaultValueFactory = _ => Path.Combine("data", "bench") };
        var command = new Command("recovery", "Time for a partition with many events to recover after kill -9, with and without snapshots.")
        {
            events, snapshotEvery, keys, dataDir,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new RecoveryOptions(parse.GetValue(events), parse.GetValue(snapshotEvery), parse.GetValue(keys), parse.GetValue(dataDir)!);
            await new RecoveryBenchmark(options, Console.Out).RunAsync(ct);
            return 0;
        });
        return command;
    }

    private static Command Load()
    {
        var nodes = CliOptions.Int("--nodes", "Cluster size (ignored with --url).", 1, UpCommand.MaxNodes, 3);
        var concurrency = CliOptions.IntList("--concurrency", "Comma-separated client counts.", 1, 10_000, "16,64");
        var duration = CliOptions.Duration("--duration", "Length of each phase, e.g. 10s.", "10s", allowZero: false);
        var readRatio = CliOptions.Fraction("--read-ratio", "Share of reads in the read phase (1 = reads only; e.g. 0.9 for a mix).", 1.0);
        var compareEtcd = new Option<bool>("--compare-etcd") { Description = "Also run the same load against a 3-node etcd (Debian's etcd-server) and print the ratio." };
        var urls = new Option<string[]>("--url") { Description = "Target a running cluster instead of starting one (repeat per node).", AllowMultipleArgumentsPerToken = true };
        var dataDir = new Option<string>("--data-dir") { Description = "Where the benchmark cluster keeps its store and logs.", DefaultValueFactory = _ => Path.Combine("data", "bench") };
        var routing = new Option<string>("--routing") { Description = "any (each request to any node, as etcd's clients do) or owner (to the node owning the key's partition, per /v1/cluster).", DefaultValueFactory = _ => "any" };
        routing.AcceptOnlyFromAmong("any", "owner");
        // 20 s: a node's tiered JIT is still compiling new code paths after 5 s of load, and at the rates the journal
        // writer reaches that cost up to half the writes (PostgreSQL, three nodes at c=64, the same day: 3,609 writes/s
        // after 5 s, 6,860 after 20 s; the journal in memory: 5.9-6.8k against 10.9-11.4k). etcd gets the same warm-up.
        var warmup = CliOptions.Duration("--warmup", "Unmeasured writes, then reads, at the highest concurrency before the measured phases of each target (0 for none).", "20s", allowZero: true);
        var valueBytes = CliOptions.Int("--value-bytes", "Size of every value written (the node's MaxValueBytes, 1 MiB by default, is the most it takes).", 1, 16 * 1024 * 1024, LoadBenchmark.DefaultValueBytes);
        var keys = CliOptions.Int("--keys", "Distinct keys written and read (fewer for large values: every key is written once before the phases).", 1, 1_000_000, LoadBenchmark.DefaultKeys);
        var journal = new Option<string>("--journal")
        {
            Description = "store (durable, the default) or memory: every node journals in its own memory, NOT durably, to measure the ceiling of everything above the store (the warm-up then defaults to 20s).",
            DefaultValueFactory = _ => "store",
        };
        journal.AcceptOnlyFromAmong("store", "memory");
        var command = new Command("load", "Durable write and read throughput and latency over HTTP, optionally side by side with etcd.")
        {
            nodes, concurrency, duration, readRatio, compareEtcd, urls, dataDir, routing, warmup, valueBytes, keys, journal,
        };
        command.Validators.Add(result =>
        {
            // Read from the tokens: GetValue would throw here on a value outside the choices, which its own check reports.
            if (result.GetResult(journal)?.Tokens is [{ Value: "memory" }] && result.GetResult(urls)?.Tokens.Count > 0)
            {
                result.AddError("--journal memory needs a cluster the benchmark starts itself; it cannot change the journal of the nodes given with --url.");
            }
        });
        var store = new StoreOption();
        store.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            // Checked before anything starts: found missing after the ActorHa phases, a run's minutes would be lost.
            if (parse.GetValue(compareEtcd) && EtcdCluster.Executable is null)
            {
                await Console.Error.WriteLineAsync($"actorha bench load: {EtcdCluster.NotInstalled}");
                return 2;
            }

            var (storeSettings, storeDescription) = store.Resolve(parse);
            var levels = CliOptions.ParseIntList(parse.GetValue(concurrency)!);
            var options = new LoadOptions(parse.GetValue(nodes), levels, Durations.Parse(parse.GetValue(duration)!), parse.GetValue(readRatio),
                parse.GetValue(compareEtcd), parse.GetValue(dataDir)!, parse.GetValue(urls) ?? [], storeSettings, storeDescription, parse.GetValue(routing) == "owner",
                Durations.Parse(parse.GetValue(warmup)!), parse.GetValue(valueBytes), parse.GetValue(keys), MemoryJournal: parse.GetValue(journal) == "memory");
            var results = await new LoadBenchmark(options, Console.Out).RunAsync(ct);
            return results.Any(r => r.Errors > 0) ? 1 : 0;
        });
        return command;
    }

    private static Command Failover()
    {
        var nodes = CliOptions.Int("--nodes", "Cluster size (at least 2: a node fails and the others take over).", 2, UpCommand.MaxNodes, 3);
        var runs = CliOptions.Int("--runs", "Faults to inject, one per run.", 1, int.MaxValue, 10);
        var fault = new Option<string>("--fault") { Description = "kill (SIGKILL), sigstop (freeze 10 s, then resume; the survivors end it sooner once it is downed) or leave (SIGTERM).", DefaultValueFactory = _ => "kill" };
        fault.AcceptOnlyFromAmong("kill", "sigstop", "leave");
        var config = new Option<string>("--config") { Description = "tuned (shipped timings), akka-defaults (stock Akka timings) or both (prints the ratio).", DefaultValueFactory = _ => "tuned" };
        config.AcceptOnlyFromAmong("tuned", "akka-defaults", "both");
        var clients = CliOptions.Int("--clients", "Concurrent writers.", 1, 10_000, 8);
        var dataDir = new Option<string>("--data-dir") { Description = "Where each benchmark cluster keeps its store and logs.", DefaultValueFactory = _ => Path.Combine("data", "bench") };
        var command = new Command("failover", "Measure how long a failed node's partitions stay unwritable, and check no acknowledged write is lost.")
        {
            nodes, runs, fault, config, clients, dataDir,
        };
        var store = new StoreOption();
        store.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var faultKind = Enum.Parse<Fault>(parse.GetValue(fault)!, ignoreCase: true);
            var configs = parse.GetValue(config) == "both" ? new[] { "tuned", "akka-defaults" } : [parse.GetValue(config)!];
            var summaries = new List<(string Config, double P50, double Max, int Lost)>();
            foreach (var c in configs)
            {
                // Each configuration gets its own database (a fresh one when the server is ours).
                var (storeSettings, storeDescription) = store.Resolve(parse);
                var options = new FailoverOptions(parse.GetValue(nodes), parse.GetValue(runs), faultKind, c, parse.GetValue(clients), parse.GetValue(dataDir)!, 32, storeSettings, storeDescription);
                var results = await new FailoverBenchmark(options, Console.Out).RunAsync(ct);
                var times = results.Where(r => r.Failover is not null).Select(r => r.Failover!.Value.TotalSeconds).Order().ToList();
                summaries.Add((c, times.Count > 0 ? FailoverBenchmark.Percentile(times, 0.5) : double.NaN, times.Count > 0 ? times[^1] : double.NaN, results.Sum(r => r.Lost)));
                Console.WriteLine();
            }

            if (summaries.Count == 2)
            {
                Console.WriteLine($"akka-defaults / tuned: p50 {summaries[1].P50 / summaries[0].P50:0.0}x ({summaries[1].P50:0.00} s vs {summaries[0].P50:0.00} s), max {summaries[1].Max / summaries[0].Max:0.0}x ({summaries[1].Max:0.00} s vs {summaries[0].Max:0.00} s)");
            }

            return summaries.Any(s => s.Lost > 0) ? 1 : 0;
        });
        return command;
    }
}
