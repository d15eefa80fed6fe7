using System.CommandLine;
using ActorHa.Launcher;

namespace ActorHa.Cli.Commands;

/// <summary>`--store sqlite|postgres [--connection-string …]` for the commands that start their own cluster.</summary>
public sealed class StoreOption
{
    public Option<string> Store { get; } = new("--store") { Description = "sqlite (one shared file) or postgres.", DefaultValueFactory = _ => "sqlite" };

    public Option<string?> ConnectionString { get; } = new("--connection-string") { Description = "PostgreSQL to use; without it a throw-away local server is started from Debian's binaries." };

    public StoreOption() => Store.AcceptOnlyFromAmong("sqlite", "postgres");

    public void AddTo(Command command)
    {
        command.Options.Add(Store);
        command.Options.Add(ConnectionString);
    }

    /// <summary>Node settings for the chosen store, and a one-line description for the report.</summary>
    public (IReadOnlyDictionary<string, string> Settings, string Description) Resolve(ParseResult parse)
    {
        if (parse.GetValue(Store) != "postgres")
        {
            return (new Dictionary<string, string>(), "sqlite (WAL, synchronous=FULL)");
        }

        var connection = parse.GetValue(ConnectionString) ?? PostgresServer.Shared.CreateDatabase();
        return (new Dictionary<string, string> { ["Store"] = "postgres", ["ConnectionString"] = connection }, "postgres (synchronous_commit=on)");
    }
}
