using System.CommandLine;
using ActorHa.Cli.Chaos;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha chaos`: a randomized fault run whose history is checked for linearizability violations.</summary>
public static class ChaosCommand
{
    public static Command Create()
    {
        var nodes = CliOptions.Int("--nodes", "Cluster size.", 1, UpCommand.MaxNodes, 3);
        var duration = CliOptions.Duration("--duration", "How long to inject faults, e.g. 60s.", "60s", allowZero: false);
        var faults = new Option<string>("--faults")
        {
            Description = "Comma-separated: kill (SIGKILL, then restart), pause (SIGSTOP, then SIGCONT), partition (cut one node off from the others, then heal).",
            DefaultValueFactory = _ => "kill,pause,partition",
            CustomParser = r =>
            {
                // Checked while parsing, before a PostgreSQL server or any node is started.
                var text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "";
                var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (names.Length == 0 || names.Except(ChaosRun.SupportedFaults).Any())
                {
                    r.AddError($"--faults must be one or more of {string.Join(", ", ChaosRun.SupportedFaults)}, comma-separated, not {CliOptions.Quoted(text)}.");
                }

                return text;
            },
        };
        var seed = CliOptions.Int("--seed", "Seed of the fault schedule and the workload.", int.MinValue, int.MaxValue, Environment.TickCount & 0xFFFF);
        var clients = CliOptions.Int("--clients", "Concurrent clients.", 1, 10_000, 8);
        var dataDir = new Option<string>("--data-dir") { Description = "Where the run keeps its store, logs and history.", DefaultValueFactory = _ => Path.Combine("data", "chaos") };
        var settle = new Option<bool>("--settle") { Description = "One fault at a time: before each fault, wait until every node is Up and every partition owned again (at most 30 s)." };
        var command = new Command("chaos", "Run clients against a cluster while killing and freezing nodes, then check the history.")
        {
            nodes, duration, faults, seed, clients, dataDir, settle,
        };
        var store = new StoreOption();
        store.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var (storeSettings, storeDescription) = store.Resolve(parse);
            var options = new ChaosOptions(parse.GetValue(nodes), Durations.Parse(parse.GetValue(duration)!),
                parse.GetValue(faults)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(seed), parse.GetValue(clients), parse.GetValue(dataDir)!, storeSettings, storeDescription, parse.GetValue(settle));
            return await new ChaosRun(options, Console.Out).RunAsync(ct);
        });
        return command;
    }
}
