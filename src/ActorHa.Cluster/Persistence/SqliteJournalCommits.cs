using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// A group of journal rows in one SQLite transaction, one prepared INSERT per row (SQLite runs a prepared statement
/// without parsing it again), taken in this process's turn among the host's writers (<see cref="JournalWriterTurn"/>);
/// a snapshot's save or delete likewise, alone in its transaction.
/// </summary>
public sealed class SqliteJournalCommits : IJournalCommits
{
    /// <summary>The columns of Akka.Persistence.Sql's SQLite mapping (<c>DatabaseMapping.Sqlite</c>); <c>ordering</c> is the row id.</summary>
    public const string InsertSql =
        "INSERT INTO event_journal (is_deleted, persistence_id, sequence_nr, timestamp, tags, payload, serializer_id, manifest) " +
        "VALUES (0, $pid, $seq, $ts, $tags, $payload, $ser, $manifest)";

    /// <summary>The columns of the snapshot table in the same mapping; Akka.Persistence.Sql's store saves with linq2db's InsertOrReplace.</summary>
    public const string SaveSnapshotSql =
        "INSERT OR REPLACE INTO snapshot (persistence_id, sequence_nr, created_at, payload, manifest, serializer_id) " +
        "VALUES ($pid, $seq, $created, $payload, $manifest, $ser)";

    public const string DeleteSnapshotsSql = "DELETE FROM snapshot WHERE persistence_id = $pid AND sequence_nr <= $seq";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly JournalWriterTurn? _turn;
    private SqliteCommand? _saveSnapshot;
    private SqliteCommand? _deleteSnapshots;

    private SqliteJournalCommits(SqliteConnection connection, SqliteCommand insert, JournalWriterTurn? turn) =>
        (_connection, _insert, _turn) = (connection, insert, turn);

    public static SqliteJournalCommits Open(string connectionString, JournalWriterTurn? turn)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            connection.Open();
            SqliteJournalPragmas.Apply(connection);
            var insert = connection.CreateCommand();
            insert.CommandText = InsertSql;
            insert.Parameters.Add("$pid", SqliteType.Text);
            insert.Parameters.Add("$seq", SqliteType.Integer);
            insert.Parameters.Add("$ts", SqliteType.Integer);
            insert.Parameters.Add("$tags", SqliteType.Text);
            insert.Parameters.Add("$payload", SqliteType.Blob);
            insert.Parameters.Add("$ser", SqliteType.Integer);
            insert.Parameters.Add("$manifest", SqliteType.Text);
            insert.Prepare();
            return new SqliteJournalCommits(connection, insert, turn);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public void Commit(IReadOnlyList<JournalRowData> rows)
    {
        using var turn = _turn?.Take() ?? default;

        // Deferred, as the stock journal is configured (write-isolation-level = read-uncommitted): the write lock is
        // taken at the first INSERT, and SQLite's busy handler (busy_timeout) waits for it there.
        using var transaction = _connection.BeginTransaction(deferred: true);
        _insert.Transaction = transaction;
        var p = _insert.Parameters;
        foreach (var row in rows)
        {
            p[0].Value = row.PersistenceId;
            p[1].Value = row.SequenceNr;
            p[2].Value = row.Timestamp;
            p[3].Value = row.Tags;
            p[4].Value = row.Payload;
            p[5].Value = row.SerializerId;
            p[6].Value = row.Manifest;
            _insert.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    public void SaveSnapshot(SnapshotRowData row)
    {
        // Prepared at first use: the snapshot table exists once the snapshot store has started, not when the journal has.
        var save = _saveSnapshot ??= Prepare(SaveSnapshotSql,
            ("$pid", SqliteType.Text), ("$seq", SqliteType.Integer), ("$created", SqliteType.Integer),
            ("$payload", SqliteType.Blob), ("$manifest", SqliteType.Text), ("$ser", SqliteType.Integer));
        var p = save.Parameters;
        (p[0].Value, p[1].Value, p[2].Value, p[3].Value, p[4].Value, p[5].Value) =
            (row.PersistenceId, row.SequenceNr, row.Created, row.Payload, row.Manifest, row.SerializerId);
        Alone(save);
    }

    public void DeleteSnapshots(string persistenceId, long maxSequenceNr)
    {
        var delete = _deleteSnapshots ??= Prepare(DeleteSnapshotsSql, ("$pid", SqliteType.Text), ("$seq", SqliteType.Integer));
        (delete.Parameters[0].Value, delete.Parameters[1].Value) = (persistenceId, maxSequenceNr);
        Alone(delete);
    }

    /// <summary>One statement in its own transaction, in this process's turn like a journal commit.</summary>
    private void Alone(SqliteCommand command)
    {
        using var turn = _turn?.Take() ?? default;
        using var transaction = _connection.BeginTransaction(deferred: true);
        command.Transaction = transaction;
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    private SqliteCommand Prepare(string sql, params (string Name, SqliteType Type)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, type) in parameters)
        {
            command.Parameters.Add(name, type);
        }

        command.Prepare();
        return command;
    }

    /// <summary>Closes the connection; the turn belongs to the writer and outlives it.</summary>
    public void Dispose()
    {
        _saveSnapshot?.Dispose();
        _deleteSnapshots?.Dispose();
        _insert.Dispose();
        _connection.Dispose();
    }
}
