using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Globalization;
using ActorHa.Cluster;
using ActorHa.Cluster.Fencing;
using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using ActorHa.Launcher;
using ActorHa.Node;
using Microsoft.Extensions.Configuration;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha up`: a local cluster of real node processes on loopback, until Ctrl+C or SIGTERM.</summary>
public static class UpCommand
{
    public const int MaxNodes = 9;

    // A day: CancellationTokenSource.CancelAfter takes at most int.MaxValue milliseconds (24.8 days).
    private const int MaxReadySeconds = 86_400;

    /// <summary>What .NET reports for a child that SIGKILL ended: 128 + 9, as a shell does.</summary>
    private const int KilledExitCode = 137;

    /// <summary>How long a node killed by SIGKILL, not seen stopped, waits for a survivor's fence line before it is reported as killed.</summary>
    private static readonly TimeSpan FenceLineWait = TimeSpan.FromSeconds(3);

    public static Command Create()
    {
        var nodes = CliOptions.Int("--nodes", "Number of nodes.", 1, MaxNodes, 3);
        var httpPort = CliOptions.Int("--base-http-port", "HTTP port of node 1; node N uses base+N-1.", 1, Ports.Max, 8081);
        var akkaPort = CliOptions.Int("--base-akka-port", "Akka remoting port of node 1; node N uses base+N-1.", 1, Ports.Max, 4051);
        var dataDir = new Option<string>("--data-dir") { Description = "Where the shared SQLite store and the node logs live.", DefaultValueFactory = _ => "data" };
        var partitions = CliOptions.Int("--partitions", "Partition count (fixed when the store is created).", 1, PartitionMap.MaxPartitionCount, 32);
        var timeout = CliOptions.Int("--ready-timeout", "Seconds to wait for the cluster to be ready.", 1, MaxReadySeconds, 120);

        var command = new Command("up", "Start a local cluster of node processes and keep it running until Ctrl+C.")
        {
            nodes, httpPort, akkaPort, dataDir, partitions, timeout,
        };

        command.SetAction(async (parse, _) =>
        {
            var options = new LocalClusterOptions
            {
                Nodes = parse.GetValue(nodes),
                BaseHttpPort = parse.GetValue(httpPort),
                BaseAkkaPort = parse.GetValue(akkaPort),
                DataDir = parse.GetValue(dataDir)!,
                Partitions = parse.GetValue(partitions),
            };

            // Each option was checked while parsing; how they combine is checked here, before any node starts.
            // (Not in a command validator: those see unset options as 0, not as their defaults.)
            if (PortsProblem(options) is { } problem)
            {
                await Console.Error.WriteLineAsync($"actorha up: {problem}");
                return CommandLineErrors.ExitCode;
            }

            return await RunAsync(options, TimeSpan.FromSeconds(parse.GetValue(timeout)));
        });
        return command;
    }

    /// <summary>Whether another node logged that it ended this process (the line of Fencing/DownedMemberFence or Fencing/FileLockFence).</summary>
    private static bool FencedBySurvivor(LocalCluster cluster, LocalNode dead)
    {
        var line = $"Fence: ended process {dead.Process!.Id.ToString(CultureInfo.InvariantCulture)} of ";
        return cluster.Nodes.Where(n => n != dead).Any(n => LocalCluster.Tail(n.LogFile, 400).Contains(line, StringComparison.Ordinal));
    }

    /// <summary>The settings node 1 will run with: the caller's environment, then what <see cref="LocalCluster"/> sets.</summary>
    private static ActorHaSettings NodeSettings(LocalClusterOptions options)
    {
        var own = new Dictionary<string, string?>
        {
            ["ActorHa:Host"] = options.Host,
            ["ActorHa:Port"] = options.BaseAkkaPort.ToString(CultureInfo.InvariantCulture),
            ["ActorHa:HttpUrl"] = $"http://{options.Host}:{options.BaseHttpPort}",
            ["ActorHa:DataDir"] = Path.GetFullPath(options.DataDir),
            ["ActorHa:Partitions"] = options.Partitions.ToString(CultureInfo.InvariantCulture),
            ["ActorHa:MinMembers"] = options.Nodes.ToString(CultureInfo.InvariantCulture),
        };
        var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddInMemoryCollection(own).Build();
        return NodeHost.ReadSettings(configuration);
    }

    /// <summary>Null when every node gets an HTTP and a remoting port of its own, else what is wrong.</summary>
    private static string? PortsProblem(LocalClusterOptions options)
    {
        var n = options.Nodes;
        var nodes = $"{n} node{(n == 1 ? "" : "s")}";
        foreach (var (option, basePort) in new[] { ("--base-http-port", options.BaseHttpPort), ("--base-akka-port", options.BaseAkkaPort) })
        {
            if (basePort + n - 1 > Ports.Max)
            {
                return $"{option} must be between 1 and {Ports.Max - n + 1} with {nodes} (node N uses base+N-1), not {basePort}.";
            }
        }

        return Math.Abs(options.BaseHttpPort - options.BaseAkkaPort) < n
            ? $"--base-http-port and --base-akka-port must be at least {n} apart with {nodes} (node N uses base+N-1 of each), not {options.BaseHttpPort} and {options.BaseAkkaPort}."
            : null;
    }

    private static async Task<int> RunAsync(LocalClusterOptions options, TimeSpan readyTimeout)
    {
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

        // The nodes read these settings (and the caller's ACTORHA__* variables) too: a bad one is refused
        // here in one line, not as every node's exit, and the store named is the one the nodes will use.
        ActorHaSettings settings;
        try
        {
            settings = NodeSettings(options);
        }
        catch (NodeConfigurationException e)
        {
            await Console.Error.WriteLineAsync($"actorha up: invalid configuration: {e.Message}");
            return NodeCommand.ExitConfigurationError;
        }

        await using var cluster = new LocalCluster(options);
        Console.WriteLine($"Starting {Plural(options.Nodes, "node")}; store {settings.Store.ToString().ToLowerInvariant()} at {ClusterMetadataStore.Location(settings)}, logs in {Path.Combine(cluster.DataDir, "logs")}");
        var clock = Stopwatch.StartNew();
        try
        {
            cluster.StartAll();
            await cluster.WaitUntilReadyAsync(readyTimeout, stop.Token);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync($"actorha up: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine("Interrupted; stopping nodes.");
            return 130;
        }

        Console.WriteLine($"Cluster ready in {clock.Elapsed.TotalSeconds:0.0} s: {Plural(options.Nodes, "member")} Up, {Plural(options.Partitions, "partition")} owned.");
        Console.WriteLine();
        Console.WriteLine($"{"NODE",-7} {"PID",-8} {"HTTP",-24} {"AKKA",-16} LOG");
        foreach (var node in cluster.Nodes)
        {
            Console.WriteLine($"{node.Name,-7} {node.Pid,-8} {node.HttpUrl,-24} {options.Host + ":" + node.AkkaPort,-16} {Path.GetRelativePath(Directory.GetCurrentDirectory(), node.LogFile)}");
        }

        Console.WriteLine();
        Console.WriteLine($"Try: curl -X PUT --data-binary 'hello' {cluster[1].HttpUrl}/v1/kv/greeting");
        Console.WriteLine("Press Ctrl+C to stop the cluster.");

        var reported = new HashSet<int>();
        var seenStopped = new HashSet<int>();
        var killedUndecided = new Dictionary<int, DateTime>();
        while (!stop.IsCancellationRequested)
        {
            var running = cluster.Nodes.Count(n => n.IsRunning);
            foreach (var dead in cluster.Nodes.Where(n => n.Process is { HasExited: true } && reported.Add(n.Index)).ToList())
            {
                if (dead.Process!.ExitCode == NodeCommand.ExitDowned && running > 0)
                {
                    // What a supervisor (compose's restart policy, systemd) does: a downed node only needs starting again to
                    // rejoin. A false downing (a busy machine, a long GC) would otherwise shrink the demo cluster for good.
                    Console.WriteLine($"{dead.Name} was downed by the cluster (exit code 4); starting it again to rejoin. See {dead.LogFile}.");
                    cluster.Start(dead.Index);
                    reported.Remove(dead.Index);
                    continue;
                }

                if (dead.Process.ExitCode == KilledExitCode && running > 0 && (seenStopped.Contains(dead.Index) || FencedBySurvivor(cluster, dead)))
                {
                    // Stopped, then SIGKILL: the survivors' fence ends a downed node that stays stopped, so that it cannot
                    // hold the store's write lock. It was downed as surely as one that exits with 4 and rejoins the same way.
                    // Seen stopped here, or named by a survivor's log line (which covers a stop this loop missed: up itself
                    // stopped or starved). The message holds either way, so it does not depend on which came first.
                    Console.WriteLine($"{dead.Name} was stopped and then killed (exit code {KilledExitCode}: a survivor ends a node that stays stopped once it is downed, or at once if it holds a lock the other nodes wait for); starting it again to rejoin. See {dead.LogFile}.");
                    seenStopped.Remove(dead.Index);
                    killedUndecided.Remove(dead.Index);
                    cluster.Start(dead.Index);
                    reported.Remove(dead.Index);
                    continue;
                }

                if (dead.Process.ExitCode == KilledExitCode && running > 0 && !seenStopped.Contains(dead.Index))
                {
                    // Not seen stopped, and no survivor's line naming it yet: that line may still be on its way, since this
                    // process writes the node logs from the nodes' output and may have just been resumed itself. Look again
                    // for a few seconds before reporting a plain kill -9.
                    var decideBy = killedUndecided.TryGetValue(dead.Index, out var by) ? by : killedUndecided[dead.Index] = DateTime.UtcNow + FenceLineWait;
                    if (DateTime.UtcNow < decideBy)
                    {
                        reported.Remove(dead.Index);
                        continue;
                    }
                }

                killedUndecided.Remove(dead.Index);
                var others = running == 0 ? "no node is left" : $"{Plural(running, "node")} keep{(running == 1 ? "s" : "")} serving";
                Console.WriteLine($"{dead.Name} exited (code {dead.Process.ExitCode}); {others}. See {dead.LogFile}.");
            }

            foreach (var node in cluster.Nodes)
            {
                if (node.Process is { HasExited: false } process && HostProcesses.ReadStat(process.Id) is { IsStopped: true })
                {
                    seenStopped.Add(node.Index);
                }
                else if (node.IsRunning)
                {
                    seenStopped.Remove(node.Index);
                }
            }

            if (running == 0)
            {
                await Console.Error.WriteLineAsync($"actorha up: every node has exited; stopping. Logs: {Path.Combine(cluster.DataDir, "logs")}");
                return 1;
            }

            try
            {
                await Task.Delay(500, stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        Console.WriteLine("Stopping nodes (each leaves the cluster gracefully, one at a time)...");
        await cluster.StopOneByOneAsync(TimeSpan.FromSeconds(10));
        return 0;

        static string Plural(int n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";

        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }
}
