using Npgsql;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// Serializes ActorHa's own CREATE TABLE IF NOT EXISTS between nodes starting at the same time against a fresh
/// database: two concurrent creations of one table can fail with 23505 on pg_type ("duplicate key value violates
/// unique constraint pg_type_typname_nsp_index"), which once stopped a node of a 3-node benchmark at startup.
/// </summary>
public static class PostgresSchemaLock
{
    // Any constant works as long as every node uses the same one; "ActorHa" in ASCII.
    private const long Key = 0x41_63_74_6F_72_48_61;

    /// <summary>Runs <paramref name="ddl"/> in a transaction that holds the schema lock until it commits.</summary>
    public static void Run(NpgsqlConnection connection, Action<NpgsqlTransaction> ddl)
    {
        using var tx = connection.BeginTransaction();
        using (var lockCommand = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({Key});", connection, tx))
        {
            lockCommand.ExecuteNonQuery();
        }

        ddl(tx);
        tx.Commit();
    }
}
