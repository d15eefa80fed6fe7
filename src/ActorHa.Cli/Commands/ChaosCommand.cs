using System.CommandLine;
using ActorHa.Cli.Chaos;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha chaos`: a randomized fault run whose history is checked for linearizability violations.</summary>
public static class ChaosCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "Cluster size.", DefaultValueFactory = _ => 3 };
        var duration = new Option<string>("--duration") { Description = "How long to inject faults, e.g. 60s.", DefaultValueFactory = _ => "60s" };
        var faults = new Option<string>("--faults") { Description = "Comma-separated: kill (SIGKILL, then restart), pause (SIGSTOP, then SIGCONT), partition (cut one node off from the others, then heal).", DefaultValueFactory = _ => "kill,pause,partition" };
        var seed = new Option<int>("--seed") { Description = "Seed of the fault schedule and the workload.", DefaultValueFactory = _ => Environment.TickCount & 0xFFFF };
        var clients = new Option<int>("--clients") { Description = "Concurrent clients.", DefaultValueFactory = _ => 8 };
        var dataDir = new Option<string>("--data-dir") { Description = "Where the run keeps its store, logs and history.", DefaultValueFactory = _ => Path.Combine("data", "chaos") };
        var command = new Command("chaos", "Run clients against a cluster while killing and freezing nodes, then check the history.")
        {
            nodes, duration, faults, seed, clients, dataDir,
        };
        var store = new StoreOption();
        store.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (storeSettings, storeDescription) = store.Resolve(parse);
            var options = new ChaosOptions(parse.GetValue(nodes), Durations.Parse(parse.GetValue(duration)!),
                parse.GetValue(faults)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(seed), parse.GetValue(clients), parse.GetValue(dataDir)!, storeSettings, storeDescription);
            return await new ChaosRun(options, Console.Out).RunAsync(ct);
        });
        return command;
    }
}
