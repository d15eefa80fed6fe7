using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;

namespace ActorHa.Cli.Commands;

/// <summary>
/// A command line that does not parse is one line on stderr and exit code 2, like every other bad argument,
/// instead of System.CommandLine's error followed by the whole help text and exit code 1.
/// </summary>
public static class CommandLineErrors
{
    public const int ExitCode = 2;

    /// <summary>"actorha put: --if-match must be …", or null when the command line parsed (or asks for help).</summary>
    public static string? Describe(ParseResult parse)
    {
        // Help and version requests win over errors (`actorha put --help` lacks the key but must show help).
        if (parse.Errors.Count == 0 || parse.Action is not ParseErrorAction)
        {
            return null;
        }

        var names = new List<string>();
        for (SymbolResult? result = parse.CommandResult; result is not null; result = result.Parent)
        {
            if (result is CommandResult command)
            {
                names.Insert(0, command.Command.Name);
            }
        }

        names[0] = "actorha";
        var path = string.Join(' ', names);
        return $"{path}: {OneLine(parse.Errors[0].Message)}";
    }

    /// <summary>
    /// System.CommandLine lists the allowed values one per line, each after a tab ("Must be one of:\n\t'kill'\n\t'sigstop'");
    /// on one line they become a comma-separated list.
    /// </summary>
    public static string OneLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var listStart = Array.FindIndex(lines, l => l.EndsWith(':'));
        return listStart >= 0 && listStart < lines.Length - 1
            ? $"{string.Join(' ', lines[..(listStart + 1)])} {string.Join(", ", lines[(listStart + 1)..])}."
            : string.Join(' ', lines);
    }
}
