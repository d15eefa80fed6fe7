using System.Globalization;
using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Persistence;

/// <summary>The partition count recorded in the store differs from the one this node was started with.</summary>
public sealed class PartitionCountMismatchException(int stored, int configured)
    : Exception($"This store was created with {stored} partitions, but this node is configured with {configured}. " +
                $"Keys would hash to the wrong partitions. Start the node with --partitions {stored} (ActorHa:Partitions={stored}), " +
                "or use a new data directory / database.")
{
    public int Stored { get; } = stored;

    public int Configured { get; } = configured;
}

/// <summary>
/// Prepares the store before the actor system starts: SQLite switched to WAL (readers never block the
/// journal writer, and commits are fsync'd with synchronous=FULL), and the partition count recorded on
/// first use and checked on every later start.
/// </summary>
public static class ClusterMetadataStore
{
    public static StoreInfo Prepare(ActorHaSettings settings)
    {
        return settings.Store switch
        {
            StoreKind.Sqlite => PrepareSqlite(settings),
            StoreKind.Postgres => PreparePostgres(settings),
            _ => throw new NotSupportedException($"The {settings.Store} store is not supported."),
        };
    }

    private static StoreInfo PrepareSqlite(ActorHaSettings settings)
    {
        var builder = new SqliteConnectionStringBuilder(settings.EffectiveConnectionString);
        if (Path.GetDirectoryName(Path.GetFullPath(builder.DataSource)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }

        using var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        var journalMode = Scalar(connection, "PRAGMA journal_mode=WAL;");
        var synchronous = Scalar(connection, "PRAGMA synchronous;");
        Scalar(connection, "CREATE TABLE IF NOT EXISTS actorha_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);");
        // INSERT OR IGNORE is atomic: of several nodes starting at once against a new store, one records the count.
        using (var insert = connection.CreateCommand())
        {
            insert.CommandText = "INSERT OR IGNORE INTO actorha_meta (name, value) VALUES ('partition_count', $count);";
            insert.Parameters.AddWithValue("$count", settings.Partitions.ToString(CultureInfo.InvariantCulture));
            insert.ExecuteNonQuery();
        }

        var stored = int.Parse(Scalar(connection, "SELECT value FROM actorha_meta WHERE name = 'partition_count';"), CultureInfo.InvariantCulture);
        if (stored != settings.Partitions)
        {
            throw new PartitionCountMismatchException(stored, settings.Partitions);
        }

        // WAL + synchronous=FULL (2) fsyncs every commit; NORMAL (1) would not survive a power loss.
        return new StoreInfo("sqlite", builder.DataSource, $"journal_mode={journalMode}, synchronous={SynchronousName(synchronous)}", stored);
    }

    private static StoreInfo PreparePostgres(ActorHaSettings settings)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(settings.EffectiveConnectionString);
        using var connection = new Npgsql.NpgsqlConnection(builder.ConnectionString);
        connection.Open();
        PostgresSchemaLock.Run(connection, tx =>
        {
            using var create = new Npgsql.NpgsqlCommand("""
                CREATE TABLE IF NOT EXISTS actorha_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO actorha_meta (name, value) VALUES ('partition_count', @count) ON CONFLICT (name) DO NOTHING;
                """, connection, tx);
            create.Parameters.AddWithValue("count", settings.Partitions.ToString(CultureInfo.InvariantCulture));
            create.ExecuteNonQuery();
        });

        using var read = new Npgsql.NpgsqlCommand("SELECT value FROM actorha_meta WHERE name = 'partition_count'; SHOW synchronous_commit;", connection);
        using var reader = read.ExecuteReader();
        reader.Read();
        var stored = int.Parse(reader.GetString(0), CultureInfo.InvariantCulture);
        reader.NextResult();
        reader.Read();
        var synchronousCommit = reader.GetString(0);
        if (stored != settings.Partitions)
        {
            throw new PartitionCountMismatchException(stored, settings.Partitions);
        }

        return new StoreInfo("postgres", $"{builder.Host}:{builder.Port}/{builder.Database}", $"synchronous_commit={synchronousCommit}", stored);
    }

    private static string Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "";
    }

    private static string SynchronousName(string value) => value switch
    {
        "0" => "OFF",
        "1" => "NORMAL",
        "2" => "FULL",
        "3" => "EXTRA",
        _ => value,
    };
}

public sealed record StoreInfo(string Kind, string Location, string Durability, int PartitionCount);
