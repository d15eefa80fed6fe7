using Microsoft.Data.Sqlite;

namespace ActorHa.Cluster.Persistence;

/// <summary>One row of Akka.Persistence.Sql's <c>event_journal</c> table in its SQLite mapping (<see cref="SqliteJournalWriter.InsertSql"/>).</summary>
public sealed record JournalRowData(string PersistenceId, long SequenceNr, long Timestamp, string Tags, byte[] Payload, int SerializerId, string Manifest);

/// <summary>
/// Writes journal rows to SQLite from one thread of its own, over one connection it keeps open, with one prepared
/// INSERT: everything queued while the previous commit ran goes into the next transaction (group commit), and each
/// caller's task completes only after that transaction's COMMIT has returned (fsync'd: <c>synchronous = FULL</c>).
/// <para>
/// Why not Akka.Persistence.Sql's own write path: per batch it hands rows through an Akka stream, opens a linq2db
/// connection (running the pragmas again), and builds and parses a multi-row INSERT with every value spelled out in
/// SQL text. Measured with the journal in memory, everything above the store takes ~11k writes/s on three nodes
/// here and the stock journal path brings that to ~3k (docs/performance.md, sixteenth session).
/// </para>
/// <para>
/// The writer blocks its own thread, never a pool thread: waiting for its turn among the host's writers
/// (<see cref="JournalWriterTurn"/>), in SQLite's busy handler while another process holds the file's write lock, and
/// in the commit's fsync.
/// </para>
/// </summary>
public sealed class SqliteJournalWriter : IDisposable
{
    /// <summary>The columns of Akka.Persistence.Sql's SQLite mapping (<c>DatabaseMapping.Sqlite</c>); <c>ordering</c> is the row id.</summary>
    public const string InsertSql =
        "INSERT INTO event_journal (is_deleted, persistence_id, sequence_nr, timestamp, tags, payload, serializer_id, manifest) " +
        "VALUES (0, $pid, $seq, $ts, $tags, $payload, $ser, $manifest)";

    private readonly string _connectionString;
    private readonly int _maxRows;
    private readonly object _gate = new();
    private readonly Queue<Pending> _queue = new();
    private readonly Thread _thread;
    private readonly JournalWriterTurn? _turn;
    private bool _stopping;

    public SqliteJournalWriter(string connectionString, int maxRowsPerCommit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsPerCommit, 1);
        _connectionString = connectionString;
        _maxRows = maxRowsPerCommit;
        _turn = JournalWriterTurn.For(connectionString);
        _thread = new Thread(Run) { IsBackground = true, Name = "actorha-journal-writer" };
        _thread.Start();
    }

    /// <summary>Completes once every row is committed, or faults with what failed (the rows of a failed commit are not in the journal).</summary>
    public Task WriteAsync(IReadOnlyList<JournalRowData> rows)
    {
        var pending = new Pending(rows, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            if (_stopping)
            {
                return Task.FromException(new ObjectDisposedException(nameof(SqliteJournalWriter), "The journal is stopping."));
            }

            _queue.Enqueue(pending);
            Monitor.Pulse(_gate);
        }

        return pending.Done.Task;
    }

    /// <summary>Lets the commit under way finish, fails the writes still queued, and stops the thread.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        // A commit can wait for another process's turn or lock; past this the process is stopping anyway, and the
        // thread (a background one) ends with it.
        if (_thread.Join(TimeSpan.FromSeconds(15)))
        {
            _turn?.Dispose();
        }
    }

    private void Run()
    {
        SqliteConnection? connection = null;
        SqliteCommand? insert = null;
        var batch = new List<Pending>();
        while (true)
        {
            lock (_gate)
            {
                while (_queue.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_stopping)
                {
                    // The journal is stopping (its actor system is shutting down): nobody waits for these answers any
                    // more, and each commit could wait out another process's lock for the whole busy timeout.
                    while (_queue.Count > 0)
                    {
                        _queue.Dequeue().Done.TrySetException(new ObjectDisposedException(nameof(SqliteJournalWriter), "The journal stopped before this write was committed."));
                    }

                    break;
                }

                // A write of several rows is never split: its rows commit together or not at all (AtomicWrite).
                var rows = 0;
                while (_queue.Count > 0 && (batch.Count == 0 || rows + _queue.Peek().Rows.Count <= _maxRows))
                {
                    var next = _queue.Dequeue();
                    batch.Add(next);
                    rows += next.Rows.Count;
                }
            }

            try
            {
                if (connection is null || insert is null)
                {
                    (connection, insert) = Open(_connectionString);
                }

                Commit(connection, insert, batch);
                foreach (var pending in batch)
                {
                    pending.Done.TrySetResult();
                }
            }
            catch (Exception e)
            {
                foreach (var pending in batch)
                {
                    pending.Done.TrySetException(e);
                }

                // A connection that failed mid-transaction may be in any state: the next batch starts from a new one.
                insert?.Dispose();
                connection?.Dispose();
                (connection, insert) = (null, null);
            }

            batch.Clear();
        }

        insert?.Dispose();
        connection?.Dispose();
    }

    private static (SqliteConnection, SqliteCommand) Open(string connectionString)
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
            return (connection, insert);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private void Commit(SqliteConnection connection, SqliteCommand insert, List<Pending> batch)
    {
        using var turn = _turn?.Take() ?? default;
        // Deferred, as the stock journal is configured (write-isolation-level = read-uncommitted): the write lock is
        // taken at the first INSERT, and SQLite's busy handler (busy_timeout) waits for it there.
        using var transaction = connection.BeginTransaction(deferred: true);
        insert.Transaction = transaction;
        var p = insert.Parameters;
        foreach (var pending in batch)
        {
            foreach (var row in pending.Rows)
            {
                p[0].Value = row.PersistenceId;
                p[1].Value = row.SequenceNr;
                p[2].Value = row.Timestamp;
                p[3].Value = row.Tags;
                p[4].Value = row.Payload;
                p[5].Value = row.SerializerId;
                p[6].Value = row.Manifest;
                insert.ExecuteNonQuery();
            }
        }

        transaction.Commit();
    }

    private sealed record Pending(IReadOnlyList<JournalRowData> Rows, TaskCompletionSource Done);
}
