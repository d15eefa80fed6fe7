using System.CommandLine;
using ActorHa.Cli.Commands;

var root = new RootCommand("ActorHa: a fault-tolerant, partitioned, event-sourced key/value store on an Akka.NET cluster.");
root.Subcommands.Add(UpCommand.Create());
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(ChaosCommand.Create());
root.Subcommands.Add(CheckCommand.Create());
foreach (var command in KvCommands.Create())
{
    root.Subcommands.Add(command);
}

var parse = root.Parse(args);
if (CommandLineErrors.Describe(parse) is { } error)
{
    await Console.Error.WriteLineAsync(error);
    return CommandLineErrors.ExitCode;
}

// Nodes and `up` handle SIGINT/SIGTERM themselves (graceful leave), so System.CommandLine must not.
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
