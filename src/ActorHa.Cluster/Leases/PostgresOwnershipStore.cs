using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Npgsql;

namespace ActorHa.Cluster.Leases;

/// <summary>
/// <see cref="IOwnershipStore"/> on the PostgreSQL database that holds the journal. Every time comparison
/// uses the server's clock (clock_timestamp()), so nodes on different hosts never compare their own clocks.
/// Row locks (FOR UPDATE) make acquisition atomic between nodes.
/// </summary>
public sealed class PostgresOwnershipStore(string connectionString) : IOwnershipStore
{
    private const string Now = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

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
            """));
    }

    public bool RenewNode(string node, TimeSpan ttl)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        var ms = (long)ttl.TotalMilliseconds;
        // Insert a new lease, or extend one that is still alive; an expired one stays expired.
        Execute(connection, tx, $"INSERT INTO actorha_node_lease (node, expires_at) VALUES (@node, {Now} + @ttl) ON CONFLICT (node) DO NOTHING",
            ("node", node), ("ttl", ms));
        var updated = Execute(connection, tx, $"UPDATE actorha_node_lease SET expires_at = {Now} + @ttl WHERE node = @node AND expires_at >= {Now}",
            ("node", node), ("ttl", ms));
        tx.Commit();
        return updated == 1;
    }

    public AcquireResult TryAcquire(PartitionId partition, string node)
    {
        using var connection = Open();
        using var tx = connection.BeginTransaction();
        Execute(connection, tx, "INSERT INTO actorha_partition_owner (partition, node, epoch) VALUES (@partition, NULL, 0) ON CONFLICT (partition) DO NOTHING",
            ("partition", partition.Value));
        using var read = new NpgsqlCommand($"""
            SELECT o.node, o.epoch, l.expires_at - {Now}
            FROM actorha_partition_owner o LEFT JOIN actorha_node_lease l ON l.node = o.node
            WHERE o.partition = @partition
            FOR UPDATE OF o
            """, connection, tx);
        read.Parameters.AddWithValue("partition", partition.Value);
        string? holder;
        long epoch;
        long? remainingMs;
        using (var reader = read.ExecuteReader())
        {
            reader.Read();
            holder = reader.IsDBNull(0) ? null : reader.GetString(0);
            epoch = reader.GetInt64(1);
            remainingMs = reader.IsDBNull(2) ? null : reader.GetInt64(2);
        }

        if (holder is not null && holder != node && remainingMs is >= 0)
        {
            tx.Rollback();
            return new AcquireResult(false, epoch, holder, TimeSpan.FromMilliseconds(remainingMs.Value));
        }

        Execute(connection, tx, "UPDATE actorha_partition_owner SET node = @node, epoch = epoch + 1 WHERE partition = @partition",
            ("node", node), ("partition", partition.Value));
        tx.Commit();
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
        Execute(connection, null, $"UPDATE actorha_node_lease SET expires_at = {Now} - 1 WHERE node = @node", ("node", node));
    }

    private NpgsqlConnection Open()
    {
        var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        return connection;
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
