using Npgsql;
using NpgsqlTypes;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// A group of journal rows as one prepared statement on PostgreSQL: the rows travel as seven arrays and are inserted by
/// <c>unnest</c>, so the statement is the same whatever the group's size (planned once), takes one round trip, and,
/// being a single statement outside an explicit transaction, commits all its rows or none.
/// </summary>
public sealed class PostgresJournalCommits : IJournalCommits
{
    /// <summary>The columns of Akka.Persistence.Sql's PostgreSQL mapping (<c>DatabaseMapping.PostgreSql</c>); <c>ordering</c> is a sequence.</summary>
    public const string InsertSql =
        "INSERT INTO public.event_journal (is_deleted, persistence_id, sequence_nr, created_at, tags, payload, serializer_id, manifest) " +
        "SELECT false, r.* FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::integer[], $7::text[]) AS r";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlCommand _insert;

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

    public void Dispose()
    {
        _insert.Dispose();
        _connection.Dispose();
    }
}
