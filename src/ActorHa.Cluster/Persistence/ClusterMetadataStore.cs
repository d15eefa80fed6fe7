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
/// The store could not be reached or opened at startup (PostgreSQL not up yet, a wrong host, port, database or
/// password; a SQLite file that cannot be created). The message names the store and its location, never the
/// password, and ends with the driver's own words.
/// </summary>
public sealed class StoreUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Prepares the store before the actor system starts: SQLite switched to WAL (readers never block the
/// journal writer, and commits are fsync'd with synchronous=FULL), and the partition count recorded on
/// first use and checked on every later start.
/// </summary>
public static class ClusterMetadataStore
{
    public const string MemoryJournalWarning =
        "the journal is in this node's memory (ActorHa:UnsafeMemoryJournal): acknowledged writes are NOT durable and are lost when a partition moves or the node stops; for `bench load --journal memory` only";

    public static StoreInfo Prepare(ActorHaSettings settings)
    {
        var info = settings.Store switch
        {
            StoreKind.Sqlite => PrepareSqlite(settings),
            StoreKind.Postgres => PreparePostgres(settings),
            _ => throw new NotSupportedException($"The {settings.Store} store is not supported."),
        };
        return settings.UnsafeMemoryJournal
            ? info with { Durability = "journal in memory, not durable", DurabilityWarning = MemoryJournalWarning }
            : info;
    }

    /// <summary>Where the store is, as the first log line and `up` name it: a file for SQLite, host:port/database for PostgreSQL.</summary>
    public static string Location(ActorHaSettings settings) => settings.Store switch
    {
        StoreKind.Postgres when new Npgsql.NpgsqlConnectionStringBuilder(settings.EffectiveConnectionString) is var b => $"{b.Host}:{b.Port}/{b.Database}",
        _ => Path.GetFullPath(new SqliteConnectionStringBuilder(settings.EffectiveConnectionString).DataSource),
    };

    private static StoreInfo PrepareSqlite(ActorHaSettings settings)
    {
        try
        {
            return OpenSqlite(settings);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new StoreUnavailableException($"cannot open the sqlite store at {Location(settings)}: {OneLine(e)}", e);
        }
    }

    private static StoreInfo OpenSqlite(ActorHaSettings settings)
    {
        var builder = new SqliteConnectionStringBuilder(settings.EffectiveConnectionString);
        if (Path.GetDirectoryName(Path.GetFullPath(builder.DataSource)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }

        using var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        var journalMode = Scalar(connection, "PRAGMA journal_mode=WAL;");
        // Read back after applying what the journal's connections apply, so the node prints what its writes run with.
        SqliteJournalPragmas.Apply(connection);
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
        try
        {
            try
            {
                return OpenPostgres(settings);
            }
            catch (Npgsql.PostgresException e) when (e.SqlState == IdleInTransactionTimeout)
            {
                // The server ended the schema transaction because this process stalled between two of its statements
                // for longer than the idle-in-transaction timeout (2 s): a busy machine, not an unreachable store. Seen
                // once in a CI run of many specs at once. Once more (the pool drops the ended connection).
                return OpenPostgres(settings);
            }
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            // PostgresException (a missing database, a wrong password) is an NpgsqlException too.
            throw new StoreUnavailableException($"cannot reach the postgres store at {Location(settings)}: {OneLine(e)}", e);
        }
    }

    // idle_in_transaction_session_timeout
    private const string IdleInTransactionTimeout = "25P03";

    /// <summary>The driver's message, with its cause when the message alone says only "Failed to connect to …".</summary>
    private static string OneLine(Exception e)
    {
        var message = e.Message;
        if (e.InnerException is { } inner && !message.Contains(inner.Message.TrimEnd('.'), StringComparison.Ordinal))
        {
            message = $"{message.TrimEnd('.')}: {inner.Message}";
        }

        return message.ReplaceLineEndings(" ");
    }

    private static StoreInfo OpenPostgres(ActorHaSettings settings)
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

        // "local", "remote_write", "on" and "remote_apply" all flush the commit to this server's WAL before it is acknowledged.
        var warning = string.Equals(synchronousCommit, "off", StringComparison.OrdinalIgnoreCase)
            ? "the database runs with synchronous_commit=off: PostgreSQL acknowledges a commit before it is on disk, so a write ActorHa acknowledged can be lost if PostgreSQL or its host crashes; set synchronous_commit=on for the database or role"
            : null;
        return new StoreInfo("postgres", $"{builder.Host}:{builder.Port}/{builder.Database}", $"synchronous_commit={synchronousCommit}", stored, warning);
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

/// <param name="DurabilityWarning">Set when the store may lose a write after acknowledging it.</param>
public sealed record StoreInfo(string Kind, string Location, string Durability, int PartitionCount, string? DurabilityWarning = null);
