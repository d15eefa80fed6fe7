using System.CommandLine;
using System.Globalization;
using ActorHa.Cluster.Membership;
using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using ActorHa.Launcher;
using Microsoft.Extensions.DependencyInjection;
using ActorHa.Node;
using Microsoft.AspNetCore.Builder;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha node`: runs one node in the foreground (what `up` starts and what containers run).</summary>
public static class NodeCommand
{
    public const int ExitConfigurationError = 2;
    public const int ExitStoreMismatch = 3;

    /// <summary>The cluster downed this node (split-brain resolver, or a thaw after it was removed): restart it to rejoin.</summary>
    public const int ExitDowned = 4;

    /// <summary>The store could not be reached or opened at startup (PostgreSQL not accepting connections yet, a wrong host or database).</summary>
    public const int ExitStoreUnavailable = 5;

    public static Command Create()
    {
        var host = new Option<string?>("--host") { Description = "Interface for Akka remoting (ActorHa:Host)." };
        var port = CliOptions.OptionalInt("--port", "Akka remoting port (ActorHa:Port); 0 picks a free one.", 0, Ports.Max);
        var publicHost = new Option<string?>("--public-host") { Description = "Host name peers use to reach this node (ActorHa:PublicHost)." };
        var http = new Option<string?>("--http") { Description = "HTTP URL to listen on, e.g. http://127.0.0.1:8081 (ActorHa:HttpUrl)." };
        var seeds = new Option<string[]>("--seed") { Description = "Seed node host:port; repeat for several (ActorHa:Seeds).", AllowMultipleArgumentsPerToken = true };
        var dataDir = new Option<string?>("--data-dir") { Description = "Directory of the SQLite store (ActorHa:DataDir)." };
        var partitions = CliOptions.OptionalInt("--partitions", "Partition count, fixed at cluster creation (ActorHa:Partitions).", 1, PartitionMap.MaxPartitionCount);
        var store = new Option<string?>("--store") { Description = "sqlite or postgres (ActorHa:Store)." };
        var connection = new Option<string?>("--connection-string") { Description = "Store connection string (ActorHa:ConnectionString)." };
        var snapshotEvery = CliOptions.OptionalInt("--snapshot-every", "Events between snapshots (ActorHa:SnapshotEvery).", 1, int.MaxValue);

        var command = new Command("node", "Run one ActorHa node in the foreground.")
        {
            host, port, publicHost, http, seeds, dataDir, partitions, store, connection, snapshotEvery,
        };
        command.SetAction(async (parse, _) =>
        {
            var overrides = new Dictionary<string, string?>();
            void Set(string key, string? value)
            {
                if (value is not null)
                {
                    overrides["ActorHa:" + key] = value;
                }
            }

            Set("Host", parse.GetValue(host));
            Set("Port", parse.GetValue(port)?.ToString(CultureInfo.InvariantCulture));
            Set("PublicHost", parse.GetValue(publicHost));
            Set("HttpUrl", parse.GetValue(http));
            Set("DataDir", parse.GetValue(dataDir));
            Set("Partitions", parse.GetValue(partitions)?.ToString(CultureInfo.InvariantCulture));
            Set("Store", parse.GetValue(store));
            Set("ConnectionString", parse.GetValue(connection));
            Set("SnapshotEvery", parse.GetValue(snapshotEvery)?.ToString(CultureInfo.InvariantCulture));
            var seedList = parse.GetValue(seeds) ?? [];
            for (var i = 0; i < seedList.Length; i++)
            {
                Set($"Seeds:{i}", seedList[i]);
            }

            return await RunAsync(overrides);
        });
        return command;
    }

    public static async Task<int> RunAsync(IDictionary<string, string?> overrides)
    {
        WebApplication app;
        try
        {
            app = NodeHost.Build([], overrides);
        }
        catch (NodeConfigurationException e)
        {
            await Console.Error.WriteLineAsync($"actorha node: invalid configuration: {e.Message}");
            return ExitConfigurationError;
        }
        catch (PartitionCountMismatchException e)
        {
            await Console.Error.WriteLineAsync($"actorha node: refusing to start: {e.Message}");
            return ExitStoreMismatch;
        }
        catch (StoreUnavailableException e)
        {
            await Console.Error.WriteLineAsync($"actorha node: {e.Message}");
            return ExitStoreUnavailable;
        }
        catch (PortInUseException e)
        {
            await Console.Error.WriteLineAsync($"actorha node: cannot listen: {e.Message}");
            return ExitConfigurationError;
        }

        try
        {
            // Resolved now: RunAsync disposes the host and its services when it returns.
            var exit = app.Services.GetRequiredService<NodeExit>();
            var warmup = app.Services.GetRequiredService<PersistenceWarmup>();
            await app.RunAsync();
            if (warmup.Damage is { } damage)
            {
                await Console.Error.WriteLineAsync($"actorha node: the store is damaged and this node cannot use it: {damage.ReplaceLineEndings(" ")} Restore it from a backup (docs/production.md).");
                return ExitStoreUnavailable;
            }

            if (exit.WasDowned)
            {
                await Console.Error.WriteLineAsync("actorha node: this node was downed by the cluster (split-brain resolver, or removed while unreachable) and shut down; start it again to rejoin.");
                return ExitDowned;
            }

            return 0;
        }
        catch (IOException e) when (e.InnerException is System.Net.Sockets.SocketException || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"actorha node: cannot listen: {e.Message}");
            return ExitConfigurationError;
        }
        catch (Exception e) when (StoreFailure(e) is { } store)
        {
            // The store opened for the metadata check, then failed as the cluster started (the lease file unreadable,
            // the disk full when the node takes its lease): one line and code 5, not the host's stack trace.
            await Console.Error.WriteLineAsync(store is StoreUnavailableException
                ? $"actorha node: {store.Message.ReplaceLineEndings(" ")}"
                : $"actorha node: the store failed while the node started: {store.Message.ReplaceLineEndings(" ")}");
            return ExitStoreUnavailable;
        }
    }

    private static Exception? StoreFailure(Exception e) => e switch
    {
        StoreUnavailableException or Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException => e,
        AggregateException aggregate => aggregate.InnerExceptions.Select(StoreFailure).FirstOrDefault(x => x is not null),
        _ => e.InnerException is { } inner ? StoreFailure(inner) : null,
    };
}
