using Npgsql;
using NpgsqlTypes;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// A group of journal rows as one prepared statement on PostgreSQL: the rows travel as seven arrays and are inserted by
/// <c>unnest</c>, so the statement is the same whatever the group's size (planned once), takes one round trip, and,
/// being a single statement outside an explicit transaction, commits all its rows or none. A snapshot's save or delete
/// is one prepared statement too.
/// </summary>
public sealed class PostgresJournalCommits : IJournalCommits
{
    /// <summary>The columns of Akka.Persistence.Sql's PostgreSQL mapping (<c>DatabaseMapping.PostgreSql</c>); <c>ordering</c> is a sequence.</summary>
    public const string InsertSql =
        "INSERT INTO public.event_journal (is_deleted, persistence_id, sequence_nr, created_at, tags, payload, serializer_id, manifest) " +
        "SELECT false, r.* FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::integer[], $7::text[]) AS r";

    /// <summary>The snapshot table of the same mapping; Akka.Persistence.Sql's store saves with linq2db's InsertOrReplace.</summary>
    public const string SaveSnapshotSql =
        "INSERT INTO public.snapshot_store (persistence_id, sequence_nr, created_at, payload, manifest, serializer_id) " +
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (persistence_id, sequence_nr) DO UPDATE SET " +
        "created_at = EXCLUDED.created_at, payload = EXCLUDED.payload, manifest = EXCLUDED.manifest, serializer_id = EXCLUDED.serializer_id";

    public const string DeleteSnapshotsSql = "DELETE FROM public.snapshot_store WHERE persistence_id = $1 AND sequence_nr <= $2";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlCommand _insert;
    private NpgsqlCommand? _saveSnapshot;
    private NpgsqlCommand? _deleteSnapshots;

    private PostgresJournalCommits(NpgsqlConnection connection, NpgsqlCommand insert) => (_connection, _insert) = (connection, insert);

    public static PostgresJournalCommits Open(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            connection.Open();
            var insert = new NpgsqlCommand(InsertSql, connection);
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            insert.Prepare();
            return new PostgresJournalCommits(connection, insert);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public void Commit(IReadOnlyList<JournalRowData> rows)
    {
        var n = rows.Count;
        var ids = new string[n];
        var sequenceNrs = new long[n];
        var timestamps = new long[n];
        var tags = new string[n];
        var payloads = new byte[n][];
        var serializers = new int[n];
        var manifests = new string[n];
        for (var i = 0; i < n; i++)
        {
            var row = rows[i];
            (ids[i], sequenceNrs[i], timestamps[i], tags[i], payloads[i], serializers[i], manifests[i]) =
                (row.PersistenceId, row.SequenceNr, row.Timestamp, row.Tags, row.Payload, row.SerializerId, row.Manifest);
        }

        var p = _insert.Parameters;
        (p[0].Value, p[1].Value, p[2].Value, p[3].Value, p[4].Value, p[5].Value, p[6].Value) = (ids, sequenceNrs, timestamps, tags, payloads, serializers, manifests);
        _insert.ExecuteNonQuery();
    }

    public void SaveSnapshot(SnapshotRowData row)
    {
        // Prepared at first use: the snapshot table exists once the snapshot store has started, not when the journal has.
        var save = _saveSnapshot ??= Prepare(SaveSnapshotSql,
            NpgsqlDbType.Text, NpgsqlDbType.Bigint, NpgsqlDbType.Bigint, NpgsqlDbType.Bytea, NpgsqlDbType.Text, NpgsqlDbType.Integer);
        var p = save.Parameters;
        (p[0].Value, p[1].Value, p[2].Value, p[3].Value, p[4].Value, p[5].Value) =
            (row.PersistenceId, row.SequenceNr, row.Created, row.Payload, row.Manifest, row.SerializerId);
        save.ExecuteNonQuery();
    }

    public void DeleteSnapshots(string persistenceId, long maxSequenceNr)
    {
        var delete = _deleteSnapshots ??= Prepare(DeleteSnapshotsSql, NpgsqlDbType.Text, NpgsqlDbType.Bigint);
        (delete.Parameters[0].Value, delete.Parameters[1].Value) = (persistenceId, maxSequenceNr);
        delete.ExecuteNonQuery();
    }

    private NpgsqlCommand Prepare(string sql, params NpgsqlDbType[] types)
    {
        var command = new NpgsqlCommand(sql, _connection);
        foreach (var type in types)
        {
            command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = type });
        }

        command.Prepare();
        return command;
    }

    public void Dispose()
    {
        _saveSnapshot?.Dispose();
        _deleteSnapshots?.Dispose();
        _insert.Dispose();
        _connection.Dispose();
    }
}
