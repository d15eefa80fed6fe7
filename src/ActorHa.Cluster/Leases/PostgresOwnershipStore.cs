using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Npgsql;

namespace ActorHa.Cluster.Leases;

/// <summary>
/// <see cref="IOwnershipStore"/> on the PostgreSQL database that holds the journal. Every time comparison
/// uses the server's clock (clock_timestamp()), so nodes on different hosts never compare their own clocks.
/// Row locks make acquisition atomic between nodes: the owner row's serialises acquisitions of one partition, and
/// the holder's lease row's orders a takeover against a renewal of that lease in flight (<see cref="HolderLeaseRemaining"/>).
/// </summary>
public sealed class PostgresOwnershipStore(string connectionString) : IOwnershipStore
{
    private const string Now = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

    // Only the renew thread renews.
    private (TimeSpan Ttl, string ConnectionString)? _renew;

    public string Location
    {
        get
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString);
            return $"the postgres store at {builder.Host}:{builder.Port}/{builder.Database}";
        }
    }

    public void Initialize()
    {
        using var connection = Open();
        PostgresSchemaLock.Run(connection, tx => Execute(connection, tx, """
            CREATE TABLE IF NOT EXISTS actorha_node_lease (
                node TEXT PRIMARY KEY,
                expires_at BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_partition_owner (
                partition INTEGER PRIMARY KEY,
                node TEXT NULL,
                epoch BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_node_cluster (
                node TEXT PRIMARY KEY,
                cluster TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS actorha_resolver_lease (
                name TEXT PRIMARY KEY,
                node TEXT NULL,
                epoch BIGINT NOT NULL);
            """));
    }

    public bool RenewNode(string node, TimeSpan ttl)
    {
        using var connection = Open(RenewConnectionString(ttl));
        using var tx = connection.BeginTransaction();
        var ms = (long)ttl.TotalMilliseconds;
        Execute(connection, tx, $"INSERT INTO actorha_node_lease (node, expires_at) VALUES (@node, {Now} + @ttl) ON CONFLICT (node) DO NOTHING",
            ("node", node), ("ttl", ms));
        var extended = ExtendLiveLease(connection, tx, node, ms);
        tx.Commit();
        return extended;
    }

    public AcquireResult TryAcquire(PartitionId partition, string node) =>
        InTransaction((connection, tx) => Acquire(connection, tx, partition, node));

    public AcquireResult TryTakeResolverLease(string name, string node, string? takeOverFrom = null) =>
        InTransaction((connection, tx) => Take(connection, tx, "actorha_resolver_lease", "name", name, node, takeOverFrom));

    public void ReleaseResolverLease(string name, string node)
    {
        using var connection = Open();
        Execute(connection, null, "UPDATE actorha_resolver_lease SET node = NULL WHERE name = @key AND node = @node", ("key", name), ("node", node));
    }

    /// <summary><see cref="TryAcquire"/> inside the caller's transaction, which the caller commits (or a spec holds open).</summary>
    internal static AcquireResult Acquire(NpgsqlConnection connection, NpgsqlTransaction tx, PartitionId partition, string node) =>
        Take(connection, tx, "actorha_partition_owner", "partition", partition.Value, node, null);

    private AcquireResult InTransaction(Func<NpgsqlConnection, NpgsqlTransaction, AcquireResult> take)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var result = take(connection, tx);
        if (result.Acquired)
        {
            tx.Commit();
        }
        else
        {
            tx.Rollback();
        }

        return result;
    }

    /// <summary>
    /// Takes the row <paramref name="key"/> of <paramref name="table"/> (a partition, or the resolver's lease) for
    /// <paramref name="node"/> if it is free, already ours, held by <paramref name="takeOverFrom"/>, or its holder's node
    /// lease is over.
    /// </summary>
    private static AcquireResult Take(NpgsqlConnection connection, NpgsqlTransaction tx, string table, string keyColumn, object key, string node, string? takeOverFrom)
    {
        Execute(connection, tx, $"INSERT INTO {table} ({keyColumn}, node, epoch) VALUES (@key, NULL, 0) ON CONFLICT ({keyColumn}) DO NOTHING",
            ("key", key));

        // The owner row alone is locked here. An acquisition of this row in flight makes this one wait, and
        // read committed then hands us the row as that one committed it: we judge its new holder. (This used to
        // join the holder's lease row into the same locking read; after such a wait the joined row was the one
        // read before it, which no longer matched the new holder, came back empty, and let a second node take a
        // partition whose holder had just taken it under a live lease.)
        string? holder;
        long epoch;
        using (var read = new NpgsqlCommand($"SELECT node, epoch FROM {table} WHERE {keyColumn} = @key FOR UPDATE", connection, tx))
        {
            read.Parameters.AddWithValue("key", key);
            using var reader = read.ExecuteReader();
            reader.Read();
            holder = reader.IsDBNull(0) ? null : reader.GetString(0);
            epoch = reader.GetInt64(1);
        }

        if (holder is not null && holder != node && holder != takeOverFrom && HolderLeaseRemaining(connection, tx, holder) is { } remaining)
        {
            return new AcquireResult(false, epoch, holder, remaining);
        }

        Execute(connection, tx, $"UPDATE {table} SET node = @node, epoch = epoch + 1 WHERE {keyColumn} = @key",
            ("node", node), ("key", key));
        return new AcquireResult(true, epoch + 1, node, TimeSpan.Zero);
    }

    public void Release(PartitionId partition, string node)
    {
        using var connection = Open();
        Execute(connection, null, "UPDATE actorha_partition_owner SET node = NULL WHERE partition = @partition AND node = @node",
            ("partition", partition.Value), ("node", node));
    }

    public void ReleaseNode(string node)
    {
        using var connection = Open();
        // 0, as a revoked lease: a renewal in flight re-checks this row and fails whatever its clock says.
        Execute(connection, null, "UPDATE actorha_node_lease SET expires_at = 0 WHERE node = @node", ("node", node));
    }

    /// <summary>
    /// Extends <paramref name="node"/>'s lease if it is still alive; false when it expired (or was revoked). The
    /// statement that renews, so that a spec can hold a renewal's transaction open exactly as a slow commit would.
    /// </summary>
    internal static bool ExtendLiveLease(NpgsqlConnection connection, NpgsqlTransaction tx, string node, long ttlMs) =>
        Execute(connection, tx, $"UPDATE actorha_node_lease SET expires_at = {Now} + @ttl WHERE node = @node AND expires_at >= {Now}",
            ("node", node), ("ttl", ttlMs)) == 1;

    /// <summary>
    /// How long the holder's lease still runs, or null when it is over: expired (then revoked here), released, or
    /// never taken.
    /// </summary>
    /// <remarks>
    /// Reading the lease is not enough. A renewal checks the lease alive and commits a moment later; if the check
    /// came just before expiry and the commit just after, a plain read in between sees the old, expired row, the
    /// partition is taken, and the renewal then commits and the old holder serves on: two owners. So an expired
    /// lease is revoked with an UPDATE, which conflicts with the renewal on the row. If the renewal holds the row,
    /// this waits for its commit and re-checks the renewed row (alive: nothing is taken). If this holds it, the
    /// renewal waits and re-checks the revoked row (expires_at 0: it fails whatever its clock says), and its node
    /// takes a new generation.
    /// </remarks>
    private static TimeSpan? HolderLeaseRemaining(NpgsqlConnection connection, NpgsqlTransaction tx, string holder)
    {
        if (Execute(connection, tx, $"UPDATE actorha_node_lease SET expires_at = 0 WHERE node = @node AND expires_at < {Now}", ("node", holder)) == 1)
        {
            return null;
        }

        using var read = new NpgsqlCommand($"SELECT expires_at - {Now} FROM actorha_node_lease WHERE node = @node", connection, tx);
        read.Parameters.AddWithValue("node", holder);
        // Alive a moment ago but expired by now: not taken on this attempt (it was not revoked); the caller retries
        // at once and revokes it then.
        return read.ExecuteScalar() is long remainingMs ? TimeSpan.FromMilliseconds(Math.Max(remainingMs, 0)) : null;
    }

    public void ReportCluster(string node, string cluster)
    {
        using var connection = Open();
        Execute(connection, null, "INSERT INTO actorha_node_cluster (node, cluster) VALUES (@node, @cluster) ON CONFLICT (node) DO UPDATE SET cluster = excluded.cluster",
            ("node", node), ("cluster", cluster));
    }

    public IReadOnlyList<(string Node, string? Cluster)> LiveNodes()
    {
        using var connection = Open();
        using var read = connection.CreateCommand();
        return LiveNodeRows.Read(read, Now);
    }

    private NpgsqlConnection Open() => Open(connectionString);

    private static NpgsqlConnection Open(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        return connection;
    }

    /// <summary>
    /// Renewals give up after about a lease's TTL (at least 1 s, Npgsql's unit) to connect and as long to run: a renewal that
    /// takes longer has no use (validity counts from when it was sent), and with the defaults a frozen or failing-over
    /// database held the renew thread for 30 s in one call, so the node could not even log that its lease had lapsed.
    /// The different options also give renewals a connection pool of their own, apart from the journal's.
    /// </summary>
    private string RenewConnectionString(TimeSpan ttl)
    {
        if (_renew is { } cached && cached.Ttl == ttl)
        {
            return cached.ConnectionString;
        }

        var seconds = (int)Math.Clamp(Math.Ceiling(ttl.TotalSeconds), 1, 15);
        var builder = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Timeout = seconds,
            CommandTimeout = seconds,
            CancellationTimeout = 1000,
        };
        _renew = (ttl, builder.ConnectionString);
        return builder.ConnectionString;
    }

    private static int Execute(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, params (string Name, object Value)[] parameters)
    {
        using var command = new NpgsqlCommand(sql, connection, tx);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command.ExecuteNonQuery();
    }
}
