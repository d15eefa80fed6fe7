namespace ActorHa.Cluster.Persistence;

/// <summary>One row of Akka.Persistence.Sql's <c>event_journal</c> table, in the columns every mapping has.</summary>
public sealed record JournalRowData(string PersistenceId, long SequenceNr, long Timestamp, string Tags, byte[] Payload, int SerializerId, string Manifest);

/// <summary>One row of Akka.Persistence.Sql's snapshot table (<c>snapshot</c> on SQLite, <c>snapshot_store</c> on PostgreSQL).</summary>
public sealed record SnapshotRowData(string PersistenceId, long SequenceNr, long Created, byte[] Payload, int SerializerId, string Manifest);

/// <summary>
/// How one store writes journal rows and snapshots over one connection (<see cref="SqliteJournalCommits"/>,
/// <see cref="PostgresJournalCommits"/>). Each call is its own transaction, durable when it returns; on an exception
/// none of it is.
/// </summary>
public interface IJournalCommits : IDisposable
{
    /// <summary>All the rows in one transaction.</summary>
    void Commit(IReadOnlyList<JournalRowData> rows);

    /// <summary>Inserts the snapshot, replacing one with the same persistence id and sequence number (as Akka.Persistence.Sql's store does).</summary>
    void SaveSnapshot(SnapshotRowData row);

    /// <summary>Deletes the persistence id's snapshots up to and including the sequence number.</summary>
    void DeleteSnapshots(string persistenceId, long maxSequenceNr);
}

/// <summary>
/// Writes journal rows from one thread of its own, over one connection it keeps open, with one prepared statement:
/// everything queued while the previous commit ran goes into the next transaction (group commit), and each caller's
/// task completes only after that transaction has committed (fsync'd: SQLite's <c>synchronous = FULL</c>,
/// PostgreSQL's <c>synchronous_commit = on</c>).
/// <para>
/// Why not Akka.Persistence.Sql's own write path: per batch it hands rows through an Akka stream, opens a linq2db
/// connection, and builds a multi-row INSERT whose SQL differs with every batch size, which the database then parses.
/// Measured with the journal in memory, everything above the store takes ~11k writes/s on three nodes here, and the
/// stock journal path brought that to ~3k on SQLite (docs/performance.md, sixteenth and seventeenth sessions).
/// </para>
/// <para>
/// The writer blocks its own thread, never a pool thread: waiting for the store (a lock, a turn, the network) and in
/// the commit's fsync.
/// </para>
/// </summary>
public sealed class JournalWriter : IDisposable
{
    private readonly Func<IJournalCommits> _open;
    private readonly IDisposable? _owned;
    private readonly int _maxRows;
    private readonly object _gate = new();
    private readonly Queue<Pending> _queue = new();
    private readonly Thread _thread;
    private bool _stopping;

    /// <param name="open">A new connection to the store, opened on the writer's thread at its first commit and after a failed one.</param>
    /// <param name="maxRowsPerCommit">At most this many rows per transaction, unless one write alone has more.</param>
    /// <param name="owned">Disposed with the writer, once its thread has ended.</param>
    public JournalWriter(Func<IJournalCommits> open, int maxRowsPerCommit, IDisposable? owned = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRowsPerCommit, 1);
        _open = open;
        _owned = owned;
        _maxRows = maxRowsPerCommit;
        _thread = new Thread(Run) { IsBackground = true, Name = "actorha-journal-writer" };
        _thread.Start();
    }

    public static JournalWriter ForSqlite(string connectionString, int maxRowsPerCommit)
    {
        // One turn per writer, kept across reconnections: it is this process's place among the host's writers.
        var turn = JournalWriterTurn.For(connectionString);
        return new JournalWriter(() => SqliteJournalCommits.Open(connectionString, turn), maxRowsPerCommit, turn);
    }

    public static JournalWriter ForPostgres(string connectionString, int maxRowsPerCommit) =>
        new(() => PostgresJournalCommits.Open(connectionString), maxRowsPerCommit);

    /// <summary>Completes once every row is committed, or faults with what failed (the rows of a failed commit are not in the journal).</summary>
    public Task WriteAsync(IReadOnlyList<JournalRowData> rows) => Enqueue(new Pending(rows, null, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));

    /// <summary>
    /// Runs a write of another kind (a snapshot) on the writer's thread and connection, alone in its transaction, in its
    /// place in the queue; completes once it is durable, or faults with what failed.
    /// </summary>
    public Task RunAsync(Action<IJournalCommits> write) => Enqueue(new Pending([], write, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));

    private Task Enqueue(Pending pending)
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return Task.FromException(new ObjectDisposedException(nameof(JournalWriter), "The journal is stopping."));
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

        // A commit can wait for another process's lock; past this the process is stopping anyway, and the thread (a
        // background one) ends with it.
        if (_thread.Join(TimeSpan.FromSeconds(15)))
        {
            _owned?.Dispose();
        }
    }

    private void Run()
    {
        IJournalCommits? store = null;
        var batch = new List<Pending>();
        var rows = new List<JournalRowData>();
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
                    // more, and each commit could wait out another process's lock.
                    while (_queue.Count > 0)
                    {
                        _queue.Dequeue().Done.TrySetException(new ObjectDisposedException(nameof(JournalWriter), "The journal stopped before this write was committed."));
                    }

                    break;
                }

                // A write of several rows is never split: its rows commit together or not at all (AtomicWrite). A write of
                // another kind goes alone, so that its failure fails nothing else.
                while (_queue.Count > 0 && (batch.Count == 0 ||
                       (batch[0].Alone is null && _queue.Peek().Alone is null && rows.Count + _queue.Peek().Rows.Count <= _maxRows)))
                {
                    var next = _queue.Dequeue();
                    batch.Add(next);
                    rows.AddRange(next.Rows);
                }
            }

            try
            {
                store ??= _open();
                if (batch[0].Alone is { } alone)
                {
                    alone(store);
                }
                else
                {
                    store.Commit(rows);
                }

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
                store?.Dispose();
                store = null;
            }

            batch.Clear();
            rows.Clear();
        }

        store?.Dispose();
    }

    private sealed record Pending(IReadOnlyList<JournalRowData> Rows, Action<IJournalCommits>? Alone, TaskCompletionSource Done);
}
