using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ActorHa.Launcher;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha up`: a local cluster of real node processes on loopback, until Ctrl+C or SIGTERM.</summary>
public static class UpCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Number of nodes.", DefaultValueFactory = _ => 3 };
        var httpPort = new Option<int>("--base-http-port") { Description = "HTTP port of node 1; node N uses base+N-1.", DefaultValueFactory = _ => 8081 };
        var akkaPort = new Option<int>("--base-akka-port") { Description = "Akka remoting port of node 1; node N uses base+N-1.", DefaultValueFactory = _ => 4051 };
        var dataDir = new Option<string>("--data-dir") { Description = "Where the shared SQLite store and the node logs live.", DefaultValueFactory = _ => "data" };
        var partitions = new Option<int>("--partitions") { Description = "Partition count (fixed when the store is created).", DefaultValueFactory = _ => 32 };
        var timeout = new Option<int>("--ready-timeout") { Description = "Seconds to wait for the cluster to be ready.", DefaultValueFactory = _ => 120 };

        var command = new Command("up", "Start a local cluster of node processes and keep it running until Ctrl+C.")
        {
            nodes, httpPort, akkaPort, dataDir, partitions, timeout,
        };
        command.SetAction(async (parse, _) =>
        {
            if (parse.GetValue(nodes) is < 1 or > 9)
            {
                await Console.Error.WriteLineAsync("actorha up: --nodes must be between 1 and 9.");
                return 2;
            }

            var options = new LocalClusterOptions
            {
                Nodes = parse.GetValue(nodes),
                BaseHttpPort = parse.GetValue(httpPort),
                BaseAkkaPort = parse.GetValue(akkaPort),
                DataDir = parse.GetValue(dataDir)!,
                Partitions = parse.GetValue(partitions),
            };
            return await RunAsync(options, TimeSpan.FromSeconds(parse.GetValue(timeout)));
        });
        return command;
    }

    private static async Task<int> RunAsync(LocalClusterOptions options, TimeSpan readyTimeout)
    {
        using var stop = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Cancel);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Cancel);

        await using var cluster = new LocalCluster(options);
        Console.WriteLine($"Starting {options.Nodes} nodes; store and logs in {cluster.DataDir}");
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

        Console.WriteLine($"Cluster ready in {clock.Elapsed.TotalSeconds:0.0} s: {options.Nodes} members Up, {options.Partitions} partitions owned.");
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
        while (!stop.IsCancellationRequested)
        {
            foreach (var dead in cluster.Nodes.Where(n => n.Process is { HasExited: true } && reported.Add(n.Index)))
            {
                Console.WriteLine($"{dead.Name} exited (code {dead.Process!.ExitCode}); the others keep serving. See {dead.LogFile}.");
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

        Console.WriteLine("Stopping nodes (each leaves the cluster gracefully)...");
        return 0;

        void Cancel(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }
}
