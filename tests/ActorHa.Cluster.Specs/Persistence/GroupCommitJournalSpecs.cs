using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Persistence;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Persistence;

public sealed class SqliteGroupCommitJournalSpecs(ITestOutputHelper output) : GroupCommitJournalSpecs(output, StoreKind.Sqlite)
{
    [Fact]
    public async Task Writers_on_one_file_take_turns_and_a_commit_waits_for_the_turn_another_writer_holds()
    {
        CreateJournalTable();
        using var writer = NewWriter();
        Assert.True(File.Exists(JournalWriterTurn.LockFilePath(Path.Combine(Settings.DataDir, "actorha.db"))));

        // another node's writer (its own open file description, as in another process) holds its turn
        using var other = JournalWriterTurn.For(Settings.EffectiveConnectionString)!;
        Task written;
        using (other.Take())
        {
            written = writer.WriteAsync([Row("turns", 1)]);
            await Task.Delay(500);
            Assert.False(written.IsCompleted, "the commit went ahead during another writer's turn");
            Assert.Equal(0, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'turns'"));
        }

        await written.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'turns'"));
    }

    [Fact]
    public void A_snapshot_is_saved_in_the_nodes_turn_and_waits_while_another_writer_holds_it()
    {
        // arrange: the snapshot store has started (its table exists) and another node's writer holds its turn
        SaveOneSnapshot(Sys, "turn-snapshot", "first");
        using var other = JournalWriterTurn.For(Settings.EffectiveConnectionString)!;
        var probe = CreateTestProbe();
        var snapshotter = Sys.ActorOf(Props.Create(() => new Snapshotter("turn-snapshot")));

        using (other.Take())
        {
            // act
            snapshotter.Tell(new Snapshotter.Save("second"), probe);

            // assert: nothing is written during the other writer's turn, and the save completes after it
            probe.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
            Assert.Equal(1, CountRows($"SELECT COUNT(*) FROM {SnapshotTable} WHERE persistence_id = 'turn-snapshot'"));
        }

        probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(10));
        Assert.Equal(2, CountRows($"SELECT COUNT(*) FROM {SnapshotTable} WHERE persistence_id = 'turn-snapshot'"));
    }
}

public sealed class PostgresGroupCommitJournalSpecs(ITestOutputHelper output) : GroupCommitJournalSpecs(output, StoreKind.Postgres);

/// <summary>
/// The journal's own writer (<see cref="GroupCommitJournal"/>, <see cref="JournalWriter"/>), on each store. Recovery, tags
/// and the journal's behaviour under locks and failures are also covered through the partition actor
/// (<c>PartitionActorSpecs</c>), which runs on this writer since it is the default.
/// </summary>
public abstract class GroupCommitJournalSpecs(ITestOutputHelper output, StoreKind store) : PersistenceSpecBase(output, store)
{
    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(1_764_000_000_123);

    private static readonly object[] Events =
    [
        new Events.ValueWritten("k/ü", [1, 2, 3], 1, At),
        new Events.ValueWritten("k", [], 2, At, Guid.Parse("0b9d6a1e-3c52-4f0e-9a57-2f1d2b6c9e11")),
        new Events.ValueDeleted("k", 3, At),
        // Refusals carry no tag (KvEventTagger): the row's tags column is empty, not null.
        new Events.WriteRefused("k", 3, 5, At, Guid.Parse("9a7e3c1d-0f4b-4d6a-b1e2-7c8d9e0f1a2b")),
        // Not a partition event: serialized by Akka's default serializer, with its manifest and serializer id.
        "a plain string event",
    ];

    [Fact]
    public void The_journal_of_a_node_writes_with_ActorHas_writer_by_default()
    {
        Assert.True(Settings.Store == StoreKind.Sqlite ? Settings.SqliteJournalWriter : Settings.PostgresJournalWriter);
        var journal = Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null);
        Assert.NotNull(journal);
        Persist(Sys, "default-writer", ["x"]);
        Assert.Equal(1, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'default-writer'"));
        Assert.Contains(typeof(GroupCommitJournal).FullName!, Sys.Settings.Config.GetString("akka.persistence.journal.sql.class"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Its_rows_are_column_for_column_the_rows_Akka_Persistence_Sqls_own_writer_writes()
    {
        // arrange: a second ActorSystem on the same file, with Akka.Persistence.Sql's own writer
        await WithStockHost(stockSystem =>
        {
            Assert.DoesNotContain(nameof(GroupCommitJournal), stockSystem.Settings.Config.GetString("akka.persistence.journal.sql.class"), StringComparison.Ordinal);
            var before = DateTime.UtcNow.Ticks;

            // act: the same events, as one atomic write each way
            Persist(Sys, "ours", Events);
            Persist(stockSystem, "stock", Events);

            // assert
            var ours = Rows("ours");
            var stock = Rows("stock");
            Assert.Equal(Events.Length, ours.Count);
            Assert.Equal(stock.Count, ours.Count);
            for (var i = 0; i < ours.Count; i++)
            {
                // ordering and timestamp differ by nature; everything else, including each value's SQLite type, must not
                Assert.Equal(stock[i].Columns, ours[i].Columns);
                Assert.Equal(stock[i].Types, ours[i].Types);
                Assert.InRange(ours[i].Timestamp, before, DateTime.UtcNow.Ticks);
            }

            if (Settings.Store == StoreKind.Sqlite)
            {
                Assert.Equal(["integer", "integer", "integer", "text", "text", "blob", "integer", "text"], ours[0].Types);
            }

            Assert.Equal(";kv;", ours[0].Columns[4]);
            Assert.Equal("", ours[3].Columns[4]);
            Assert.True(ours.Zip(ours.Skip(1)).All(p => p.Item1.Ordering < p.Item2.Ordering), "rows of one write are in sequence order");
        });
    }

    [Fact]
    public void What_it_wrote_is_replayed_in_order_by_Akka_Persistence_Sqls_recovery()
    {
        Persist(Sys, "replayed", Events[..2]);
        Persist(Sys, "replayed", Events[2..]);

        var recovered = Sys.ActorOf(Props.Create(() => new Persister("replayed")));
        recovered.Tell(Persister.Recovered.Instance, TestActor);
        var events = ExpectMsg<IReadOnlyList<object>>(TimeSpan.FromSeconds(10));
        Assert.Equal(Events.Length, events.Count);
        Assert.Equal(Events.Select(e => e.ToString()), events.Select(e => e.ToString()));
        Assert.Equal(((Events.ValueWritten)Events[0]).Value, ((Events.ValueWritten)events[0]).Value);
    }

    [Fact]
    public async Task A_write_queued_while_another_process_holds_the_lock_is_acknowledged_only_after_its_commit_and_writes_keep_their_order()
    {
        CreateJournalTable();
        using var writer = NewWriter();
        var pending = new List<Task>();
        using (HoldJournalWriteLock())
        {
            for (var i = 1; i <= 20; i++)
            {
                pending.Add(writer.WriteAsync([Row("locked", i)]));
            }

            await Task.Delay(500);
            Assert.DoesNotContain(pending, t => t.IsCompleted);
        }

        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), SequenceNumbersInOrdering("locked"));
    }

    [Fact]
    public async Task A_commit_that_fails_leaves_none_of_its_rows_and_the_writer_goes_on_with_the_next_write()
    {
        CreateJournalTable();
        using var writer = NewWriter();

        // One write of two rows, and the database refuses the second: the first must not be committed alone.
        ExecuteSql(Settings.Store == StoreKind.Sqlite
            ? "CREATE TRIGGER refuse_second BEFORE INSERT ON event_journal WHEN NEW.persistence_id = 'failing' AND NEW.sequence_nr = 2 " +
              "BEGIN SELECT RAISE(ABORT, 'refused by the spec'); END;"
            : "CREATE FUNCTION refuse_second() RETURNS trigger AS $$ BEGIN IF NEW.persistence_id = 'failing' AND NEW.sequence_nr = 2 THEN " +
              "RAISE EXCEPTION 'refused by the spec'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; " +
              "CREATE TRIGGER refuse_second BEFORE INSERT ON event_journal FOR EACH ROW EXECUTE FUNCTION refuse_second();");
        var failed = writer.WriteAsync([Row("failing", 1), Row("failing", 2)]);
        var error = await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => failed.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("refused by the spec", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'failing'"));
        ExecuteSql(Settings.Store == StoreKind.Sqlite ? "DROP TRIGGER refuse_second;" : "DROP TRIGGER refuse_second ON event_journal;");

        await writer.WriteAsync([Row("failing", 1)]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'failing'"));
    }

    [Fact]
    public async Task A_write_given_after_the_writer_stopped_fails_instead_of_waiting_for_ever()
    {
        CreateJournalTable();
        var writer = NewWriter();
        await writer.WriteAsync([Row("stopped", 1)]).WaitAsync(TimeSpan.FromSeconds(10));
        writer.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.WriteAsync([Row("stopped", 2)]).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, CountRows("SELECT COUNT(*) FROM event_journal WHERE persistence_id = 'stopped'"));
    }

    [Fact]
    public void The_snapshot_store_of_a_node_saves_with_ActorHas_writer_by_default()
    {
        var store = Akka.Persistence.Persistence.Instance.Apply(Sys).SnapshotStoreFor(null);
        Assert.NotNull(store);
        Assert.Contains(typeof(GroupCommitSnapshotStore).FullName!, Sys.Settings.Config.GetString("akka.persistence.snapshot-store.sql.class"), StringComparison.Ordinal);
        SaveOneSnapshot(Sys, "default-snapshots", "x");
        Assert.Equal(1, CountRows($"SELECT COUNT(*) FROM {SnapshotTable} WHERE persistence_id = 'default-snapshots'"));
    }

    [Fact]
    public async Task Its_snapshot_rows_are_column_for_column_the_rows_Akka_Persistence_Sqls_snapshot_store_writes_and_a_second_save_replaces_the_first()
    {
        // arrange: a second ActorSystem on the same store, with Akka.Persistence.Sql's own snapshot store
        await WithStockHost(stockSystem =>
        {
            Assert.DoesNotContain(nameof(GroupCommitSnapshotStore), stockSystem.Settings.Config.GetString("akka.persistence.snapshot-store.sql.class"), StringComparison.Ordinal);
            var before = DateTime.UtcNow.Ticks;

            // act: the same snapshots each way (a partition's, by ActorHa's serializer; a string, by Akka's default
            // one), and for each a second save at the same sequence number, which must replace the first
            foreach (var (persistenceId, system) in new[] { ("ours", Sys), ("stock", stockSystem) })
            {
                SaveOneSnapshot(system, persistenceId + "-state", "replaced");
                SaveOneSnapshot(system, persistenceId + "-state", Snapshots[0], sameSequenceNr: true);
                SaveOneSnapshot(system, persistenceId + "-string", Snapshots[1]);
            }

            // assert
            foreach (var kind in new[] { "-state", "-string" })
            {
                var ours = SnapshotRows("ours" + kind);
                var stock = SnapshotRows("stock" + kind);
                Assert.Single(ours);
                Assert.Single(stock);
                // the timestamp differs by nature; everything else, including each value's SQLite type, must not
                Assert.Equal(stock[0].Columns, ours[0].Columns);
                Assert.Equal(stock[0].Types, ours[0].Types);
                Assert.InRange(ours[0].Timestamp, before, DateTime.UtcNow.Ticks);
            }

            if (Settings.Store == StoreKind.Sqlite)
            {
                Assert.Equal(["integer", "integer", "blob", "text", "integer"], SnapshotRows("ours-state")[0].Types);
            }
        });
    }

    [Fact]
    public void What_it_saved_is_offered_by_Akka_Persistence_Sqls_recovery_and_a_delete_up_to_a_sequence_number_keeps_the_later_ones()
    {
        // arrange: three snapshots of one persistent actor, at sequence numbers 1, 2 and 3
        var probe = CreateTestProbe();
        var snapshotter = Sys.ActorOf(Props.Create(() => new Snapshotter("recovered-snapshots")));
        foreach (var snapshot in new object[] { "one", "two", Snapshots[0] })
        {
            snapshotter.Tell(new Snapshotter.Save(snapshot), probe);
            probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(10));
        }

        // act
        snapshotter.Tell(new Snapshotter.DeleteUpTo(2), probe);
        probe.ExpectMsg<DeleteSnapshotsSuccess>(TimeSpan.FromSeconds(10));
        Sys.Stop(snapshotter);

        // assert: only the third is left, and a new incarnation is offered it
        Assert.Equal(new[] { 3L }, SnapshotRows("recovered-snapshots").Select(r => r.SequenceNr));
        var recovered = Sys.ActorOf(Props.Create(() => new Snapshotter("recovered-snapshots")));
        recovered.Tell(Snapshotter.Offered.Instance, probe);
        var offer = probe.ExpectMsg<SnapshotOffer>(TimeSpan.FromSeconds(10));
        Assert.Equal(3, offer.Metadata.SequenceNr);
        var state = Assert.IsType<PartitionState>(offer.Snapshot);
        Assert.Equal(((PartitionState)Snapshots[0]).Find("k")!.Value, state.Find("k")!.Value);
        Assert.Equal(2, state.Recent.Count);
    }

    [Fact]
    public void A_snapshot_save_queued_while_another_process_holds_the_lock_completes_only_after_its_commit()
    {
        SaveOneSnapshot(Sys, "locked-snapshot", "first");
        var probe = CreateTestProbe();
        var snapshotter = Sys.ActorOf(Props.Create(() => new Snapshotter("locked-snapshot")));
        using (HoldJournalWriteLock(SnapshotTable))
        {
            snapshotter.Tell(new Snapshotter.Save("second"), probe);
            probe.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        }

        probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(10));
        Assert.Equal(2, CountRows($"SELECT COUNT(*) FROM {SnapshotTable} WHERE persistence_id = 'locked-snapshot'"));
    }

    [Fact]
    public void A_snapshot_save_the_database_refuses_fails_alone_and_the_next_save_succeeds()
    {
        SaveOneSnapshot(Sys, "refused-snapshot", "first");
        ExecuteSql(Settings.Store == StoreKind.Sqlite
            ? $"CREATE TRIGGER refuse_snapshot BEFORE INSERT ON {SnapshotTable} WHEN NEW.persistence_id = 'refused-snapshot' " +
              "BEGIN SELECT RAISE(ABORT, 'refused by the spec'); END;"
            : "CREATE FUNCTION refuse_snapshot() RETURNS trigger AS $$ BEGIN IF NEW.persistence_id = 'refused-snapshot' THEN " +
              "RAISE EXCEPTION 'refused by the spec'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; " +
              $"CREATE TRIGGER refuse_snapshot BEFORE INSERT ON {SnapshotTable} FOR EACH ROW EXECUTE FUNCTION refuse_snapshot();");
        var probe = CreateTestProbe();
        var snapshotter = Sys.ActorOf(Props.Create(() => new Snapshotter("refused-snapshot")));

        snapshotter.Tell(new Snapshotter.Save("second"), probe);
        var failure = probe.ExpectMsg<SaveSnapshotFailure>(TimeSpan.FromSeconds(10));
        Assert.Contains("refused by the spec", failure.Cause.ToString(), StringComparison.Ordinal);
        // the journal's writer is not the snapshot store's: a journal write goes on meanwhile
        Persist(Sys, "beside-refused-snapshot", ["x"]);

        ExecuteSql(Settings.Store == StoreKind.Sqlite ? "DROP TRIGGER refuse_snapshot;" : $"DROP TRIGGER refuse_snapshot ON {SnapshotTable};");
        snapshotter.Tell(new Snapshotter.Save("third"), probe);
        probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(10));
        Assert.Equal(2, CountRows($"SELECT COUNT(*) FROM {SnapshotTable} WHERE persistence_id = 'refused-snapshot'"));
    }

    private static readonly object[] Snapshots =
    [
        PartitionState.FromEntries(
            [new KeyValuePair<string, Entry>("k", new Entry([1, 2, 3], 2, At, At.AddSeconds(1), false))],
            [(Guid.Parse("0b9d6a1e-3c52-4f0e-9a57-2f1d2b6c9e11"), (IPartitionReply)new Replies.Written("k", 1, true)),
             (Guid.Parse("9a7e3c1d-0f4b-4d6a-b1e2-7c8d9e0f1a2b"), new Replies.Written("k", 2, false))]),
        "a plain string snapshot",
    ];

    /// <summary>Saves one snapshot through a persistent actor (at the next sequence number, or at the last one again) and waits for it.</summary>
    protected void SaveOneSnapshot(ActorSystem system, string persistenceId, object snapshot, bool sameSequenceNr = false)
    {
        var probe = CreateTestProbe(system);
        var snapshotter = system.ActorOf(Props.Create(() => new Snapshotter(persistenceId)));
        snapshotter.Tell(new Snapshotter.Save(snapshot, sameSequenceNr), probe);
        probe.ExpectMsg<SaveSnapshotSuccess>(TimeSpan.FromSeconds(10));
        system.Stop(snapshotter);
    }

    private List<StoredSnapshot> SnapshotRows(string persistenceId)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = Settings.Store == StoreKind.Sqlite
            ? "SELECT sequence_nr, created_at, serializer_id, manifest, hex(payload), " +
              "typeof(sequence_nr), typeof(created_at), typeof(payload), typeof(manifest), typeof(serializer_id) " +
              $"FROM snapshot WHERE persistence_id = '{persistenceId}' ORDER BY sequence_nr"
            : "SELECT sequence_nr, created_at, serializer_id, manifest, upper(encode(payload, 'hex')), '', '', '', '', '' " +
              $"FROM snapshot_store WHERE persistence_id = '{persistenceId}' ORDER BY sequence_nr";
        using var reader = command.ExecuteReader();
        var rows = new List<StoredSnapshot>();
        while (reader.Read())
        {
            rows.Add(new StoredSnapshot(
                reader.GetInt64(0),
                reader.GetInt64(1),
                [.. Enumerable.Range(0, 5).Where(i => i != 1).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!)],
                [.. Enumerable.Range(5, 5).Select(reader.GetString)]));
        }

        return rows;
    }

    /// <summary>Columns: sequence_nr, serializer_id, manifest, payload (hex).</summary>
    private sealed record StoredSnapshot(long SequenceNr, long Timestamp, string[] Columns, string[] Types);

    /// <summary>Runs <paramref name="body"/> with a second ActorSystem on the same store that writes through Akka.Persistence.Sql's own journal and snapshot store.</summary>
    private async Task WithStockHost(Action<ActorSystem> body)
    {
        var stockSettings = new ActorHaSettings
        {
            Store = Settings.Store, DataDir = Settings.DataDir, ConnectionString = Settings.ConnectionString,
            SqliteJournalWriter = false, PostgresJournalWriter = false,
        };
        var (stockHost, stockSystem) = StartHost(stockSettings);
        try
        {
            body(stockSystem);
        }
        finally
        {
            await stockHost.StopAsync();
            stockHost.Dispose();
        }
    }

    /// <summary>The journal's table exists once the journal has started (Akka.Persistence.Sql creates it).</summary>
    protected void CreateJournalTable() => Persist(Sys, "table", ["created"]);

    protected JournalWriter NewWriter() => Settings.Store == StoreKind.Sqlite
        ? JournalWriter.ForSqlite(Settings.EffectiveConnectionString, maxRowsPerCommit: 100)
        : JournalWriter.ForPostgres(Settings.EffectiveConnectionString, maxRowsPerCommit: 100);

    protected static JournalRowData Row(string persistenceId, long sequenceNr) =>
        new(persistenceId, sequenceNr, DateTime.UtcNow.Ticks, "", [1, 2, 3], 1, "");

    private void Persist(ActorSystem system, string persistenceId, object[] events)
    {
        var probe = CreateTestProbe(system);
        var persister = system.ActorOf(Props.Create(() => new Persister(persistenceId)));
        persister.Tell(events, probe);
        probe.ExpectMsg<Persister.Persisted>(TimeSpan.FromSeconds(10));
        system.Stop(persister);
    }

    private List<long> SequenceNumbersInOrdering(string persistenceId)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT sequence_nr FROM event_journal WHERE persistence_id = '{persistenceId}' ORDER BY ordering";
        using var reader = command.ExecuteReader();
        var numbers = new List<long>();
        while (reader.Read())
        {
            numbers.Add(reader.GetInt64(0));
        }

        return numbers;
    }

    private List<StoredRow> Rows(string persistenceId)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = Settings.Store == StoreKind.Sqlite
            ? "SELECT ordering, timestamp, is_deleted, sequence_nr, serializer_id, manifest, tags, hex(payload), " +
              "typeof(timestamp), typeof(is_deleted), typeof(sequence_nr), typeof(persistence_id), typeof(tags), typeof(payload), typeof(serializer_id), typeof(manifest) " +
              $"FROM event_journal WHERE persistence_id = '{persistenceId}' ORDER BY sequence_nr"
            // PostgreSQL's columns are typed, so only the values can differ.
            : "SELECT ordering, created_at, is_deleted::text, sequence_nr, serializer_id, manifest, tags, upper(encode(payload, 'hex')), " +
              "'', '', '', '', '', '', '', '' " +
              $"FROM event_journal WHERE persistence_id = '{persistenceId}' ORDER BY sequence_nr";
        using var reader = command.ExecuteReader();
        var rows = new List<StoredRow>();
        while (reader.Read())
        {
            rows.Add(new StoredRow(
                reader.GetInt64(0),
                reader.GetInt64(1),
                [.. Enumerable.Range(2, 6).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!)],
                [.. Enumerable.Range(8, 8).Select(reader.GetString)]));
        }

        return rows;
    }

    /// <summary>Columns: is_deleted, sequence_nr, serializer_id, manifest, tags, payload (hex).</summary>
    private sealed record StoredRow(long Ordering, long Timestamp, string[] Columns, string[] Types);

    /// <summary>Persists the events it is sent as one atomic write; asked, answers with the events it recovered.</summary>
    private sealed class Persister : ReceivePersistentActor
    {
        private readonly List<object> _recovered = [];

        public Persister(string persistenceId)
        {
            PersistenceId = persistenceId;
            Recover<RecoveryCompleted>(_ => { });
            Recover<object>(e => _recovered.Add(e));
            Command<object[]>(events =>
            {
                var sender = Sender;
                var left = events.Length;
                PersistAll(events, _ =>
                {
                    if (--left == 0)
                    {
                        sender.Tell(Persisted.Instance);
                    }
                });
            });
            Command<Recovered>(_ => Sender.Tell((IReadOnlyList<object>)_recovered.ToList()));
        }

        public override string PersistenceId { get; }

        public sealed record Persisted
        {
            public static readonly Persisted Instance = new();
        }

        public sealed record Recovered
        {
            public static readonly Recovered Instance = new();
        }
    }

    /// <summary>Saves the snapshots it is sent (each at the next sequence number unless asked for the same one) and deletes up to a sequence number, answering with the store's reply; asked, answers with the snapshot it was offered.</summary>
    protected sealed class Snapshotter : ReceivePersistentActor
    {
        private long _sequenceNr;
        private SnapshotOffer? _offer;
        private IActorRef _replyTo = ActorRefs.Nobody;

        public Snapshotter(string persistenceId)
        {
            PersistenceId = persistenceId;
            Recover<SnapshotOffer>(offer =>
            {
                _offer = offer;
                _sequenceNr = offer.Metadata.SequenceNr;
            });
            Recover<RecoveryCompleted>(_ => { });
            Command<Save>(save =>
            {
                _replyTo = Sender;
                _sequenceNr = save.SameSequenceNr ? Math.Max(_sequenceNr, 1) : _sequenceNr + 1;
                // A snapshot's sequence number is the last event's: no event is persisted here, so set it directly.
                SaveSnapshot(new SnapshotMetadata(PersistenceId, _sequenceNr, DateTime.UtcNow), save.Snapshot);
            });
            Command<DeleteUpTo>(delete =>
            {
                _replyTo = Sender;
                DeleteSnapshots(new SnapshotSelectionCriteria(delete.MaxSequenceNr));
            });
            Command<SaveSnapshotSuccess>(m => _replyTo.Tell(m));
            Command<SaveSnapshotFailure>(m => _replyTo.Tell(m));
            Command<DeleteSnapshotsSuccess>(m => _replyTo.Tell(m));
            Command<DeleteSnapshotsFailure>(m => _replyTo.Tell(m));
            Command<Offered>(_ => Sender.Tell((object?)_offer ?? "no offer"));
        }

        public override string PersistenceId { get; }

        private void SaveSnapshot(SnapshotMetadata metadata, object snapshot) =>
            SnapshotStore.Tell(new Akka.Persistence.SaveSnapshot(metadata, snapshot), Self);

        public sealed record Save(object Snapshot, bool SameSequenceNr = false);

        public sealed record DeleteUpTo(long MaxSequenceNr);

        public sealed record Offered
        {
            public static readonly Offered Instance = new();
        }
    }
}
