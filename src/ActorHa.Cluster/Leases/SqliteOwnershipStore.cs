using System.Globalization;
using ActorHa.Domain;
using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Leases;

/// <summary>
/// <see cref="IOwnershipStore"/> on SQLite, in a file of its own next to the journal (<c>actorha.leases.db</c> beside
/// <c>actorha.db</c>; <see cref="ForJournal"/>). Not in the journal's file: SQLite has one write lock per file, and a
/// renewal queued behind back-to-back journal commits was measured at 230–650 ms, long enough for the node's lease to
/// lapse under write load and every partition to stop. Safety does not need the two in one file: a write is
/// acknowledged only if the lease is still valid after its commit, and the journal's unique (persistence id,
/// sequence number) fences a late commit of an old owner.
/// </summary>
public sealed class SqliteOwnershipStore(string connectionString) : IOwnershipStore
{
    // Milliseconds since the Unix epoch, evaluated by SQLite itself.
    private const string Now = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

    private readonly string _connectionString = new SqliteConnectionStringBuilder(connectionString)
    {
        // A lease operation must never queue behind a long busy wait: failing fast and retrying is safer.
        DefaultTimeout = 2,
        Pooling = true,
    }.ToString();

    /// <summary>The ownership store for the journal at <paramref name="journalConnectionString"/>: same folder, <c>&lt;name&gt;.leases.db</c>.</summary>
    public static SqliteOwnershipStore ForJournal(string journalConnectionString)
    {
        var journal = new SqliteConnectionStringBuilder(journalConnectionString);
        var path = Path.GetFullPath(journal.DataSource);
        var leases = Path.Combine(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(path) + ".leases.db");
        return new SqliteOwnershipStore(new SqliteConnectionStringBuilder(journalConnectionString) { DataSource = leases }.ToString());
    }

    public string Location => $"the lease file {FilePath}";

    /// <summary>The lease file's path; SQLite keeps <c>-wal</c> and <c>-shm</c> files beside it.</summary>
    public string FilePath => new SqliteConnectionStringBuilder(connectionString).DataSource;

    public void Initialize()
    {
        using var connection = Open();
        // WAL: renewals of several processes do not block each other's reads; FULL: a renewal is on disk when it returns.
        Execute(connection, "PRAGMA journal_mode = WAL;");
        Execute(connection, """
            CREATE TABLE IF NOT EXISTS actorha_node_lease (
                node TEXT PRIMARY KEY,
                expires_at INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_partition_owner (
                partition INTEGER PRIMARY KEY,
                node TEXT NULL,
                epoch INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_node_cluster (
                node TEXT PRIMARY KEY,
                cluster TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_resolver_lease (
                name TEXT PRIMARY KEY,
                node TEXT NULL,
                epoch INTEGER NOT NULL);
            """);
    }

    public bool RenewNode(string node, TimeSpan ttl)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction(deferred: false);
        var ms = (long)ttl.TotalMilliseconds;
        var existing = Scalar(connection, tx, "SELECT expires_at - " + Now + " FROM actorha_node_lease WHERE node = $node", ("$node", node));
        if (existing is null)
        {
            Execute(connection, tx, $"INSERT INTO actorha_node_lease (node, expires_at) VALUES ($node, {Now} + $ttl)", ("$node", node), ("$ttl", ms));
        }
        else if (Convert.ToInt64(existing, CultureInfo.InvariantCulture) < 0)
        {
            // Expired: someone may already own our partitions. Extending it now would revive a dead owner.
            tx.Rollback();
            return false;
        }
        else
        {
            Execute(connection, tx, $"UPDATE actorha_node_lease SET expires_at = {Now} + $ttl WHERE node = $node", ("$node", node), ("$ttl", ms));
        }

        tx.Commit();
        return true;
    }

    public AcquireResult TryAcquire(PartitionId partition, string node) => Take("actorha_partition_owner", "partition", partition.Value, node, null);

    public AcquireResult TryTakeResolverLease(string name, string node, string? takeOverFrom = null) =>
        Take("actorha_resolver_lease", "name", name, node, takeOverFrom);

    public void ReleaseResolverLease(string name, string node)
    {
        using var connection = Open();
        Execute(connection, null, "UPDATE actorha_resolver_lease SET node = NULL WHERE name = $key AND node = $node", ("$key", name), ("$node", node));
    }

    /// <summary>
    /// Takes the row <paramref name="key"/> of <paramref name="table"/> (a partition, or the resolver's lease) for
    /// <paramref name="node"/> if it is free, already ours, held by <paramref name="takeOverFrom"/>, or its holder's
    /// node lease has expired. The write lock is taken first (BEGIN IMMEDIATE), so two nodes cannot both read the row
    /// as free.
    /// </summary>
    private AcquireResult Take(string table, string keyColumn, object key, string node, string? takeOverFrom)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction(deferred: false);
        using var read = connection.CreateCommand();
        read.Transaction = tx;
        read.CommandText = $"""
            SELECT o.node, o.epoch, l.expires_at - {Now}
            FROM {table} o LEFT JOIN actorha_node_lease l ON l.node = o.node
            WHERE o.{keyColumn} = $key
            """;
        read.Parameters.AddWithValue("$key", key);
        string? holder = null;
        long epoch = 0;
        long? remainingMs = null;
        using (var reader = read.ExecuteReader())
        {
            if (reader.Read())
            {
                holder = reader.IsDBNull(0) ? null : reader.GetString(0);
                epoch = reader.GetInt64(1);
                remainingMs = reader.IsDBNull(2) ? null : reader.GetInt64(2);
            }
        }

        var free = holder is null || holder == node || holder == takeOverFrom || remainingMs is null or < 0;
        if (!free)
        {
            tx.Rollback();
            return new AcquireResult(false, epoch, holder, TimeSpan.FromMilliseconds(remainingMs!.Value));
        }

        Execute(connection, tx, $"""
            INSERT INTO {table} ({keyColumn}, node, epoch) VALUES ($key, $node, 1)
            ON CONFLICT({keyColumn}) DO UPDATE SET node = excluded.node, epoch = {table}.epoch + 1
            """, ("$key", key), ("$node", node));
        tx.Commit();
        return new AcquireResult(true, epoch + 1, node, TimeSpan.Zero);
    }

    public void Release(PartitionId partition, string node)
    {
        using var connection = Open();
        Execute(connection, null, "UPDATE actorha_partition_owner SET node = NULL WHERE partition = $partition AND node = $node",
            ("$partition", partition.Value), ("$node", node));
    }

    public void ReleaseNode(string node)
    {
        using var connection = Open();
        Execute(connection, null, $"UPDATE actorha_node_lease SET expires_at = {Now} - 1 WHERE node = $node", ("$node", node));
    }

    public void ReportCluster(string node, string cluster)
    {
        using var connection = Open();
        Execute(connection, null, "INSERT INTO actorha_node_cluster (node, cluster) VALUES ($node, $cluster) ON CONFLICT(node) DO UPDATE SET cluster = excluded.cluster",
            ("$node", node), ("$cluster", cluster));
    }

    public IReadOnlyList<(string Node, string? Cluster)> LiveNodes()
    {
        using var connection = Open();
        using var read = connection.CreateCommand();
        return LiveNodeRows.Read(read, Now);
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        // Wait for the lock in ~1 ms steps, but never longer than a renewal is worth.
        SqliteBusyWait.Apply(connection, TimeSpan.FromMilliseconds(500));
        Execute(connection, "PRAGMA synchronous = FULL;");
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql) => Execute(connection, null, sql);

    private static void Execute(SqliteConnection connection, SqliteTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = connection.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        var result = command.ExecuteScalar();
        return result is DBNull ? null : result;
    }
}
