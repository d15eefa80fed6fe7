using System.CommandLine;
using System.Text.Json;
using ActorHa.Checker;

namespace ActorHa.Cli.Commands;

/// <summary>
/// `actorha check FILE`: runs the history checker over a recorded history again, e.g. one kept from an earlier
/// chaos run after the checker learned something new.
/// </summary>
public static class CheckCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("history") { Description = "A history.jsonl written by `actorha chaos`." };
        var command = new Command("check", "Check a recorded history (history.jsonl) for linearizability violations; exit 0 if none, 1 if any.") { file };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            List<Operation> history;
            try
            {
                history = [.. HistoryFile.Read(path)];
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or FormatException)
            {
                Console.Error.WriteLine($"actorha check: cannot read {path}: {e.Message}");
                return CommandLineErrors.ExitCode;
            }

            var result = HistoryChecker.Check(history);
            Console.Out.WriteLine($"operations {result.Operations}: ok {result.Ok}, failed {result.Failed}, indeterminate {result.Indeterminate}");
            Console.Out.WriteLine($"violations {result.Violations.Count}");
            foreach (var violation in result.Violations.Take(50))
            {
                Console.Out.WriteLine($"  {violation.Kind} {violation.Key}: {violation.Detail}");
            }

            return result.IsValid ? 0 : 1;
        });
        return command;
    }
}
