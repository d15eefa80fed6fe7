using Akka.Configuration;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Persistence.Sql.Snapshot;
using Akka.Serialization;
using Akka.Util;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// Akka.Persistence.Sql's snapshot store with its saves and its deletes up to a sequence number (the two a partition
/// uses) written by a <see cref="JournalWriter"/> of its own: one thread, one connection, prepared statements, and on
/// SQLite the same turns (<see cref="JournalWriterTurn"/>) as the journal writers. Loading, table creation and the other
/// deletes stay Akka.Persistence.Sql's, and read the rows this store writes (specs compare them column by column).
/// <para>
/// Why: a partition's snapshot (~200 KB under <c>bench load</c>) is a large write to the file every journal commits
/// to. Through linq2db it took SQLite's write lock outside the writers' turns, so each commit that met it waited in
/// SQLite's busy handler, which sleeps 1, 2, 5, 10 … ms and is not woken when the lock frees. With snapshots off
/// during a run, three nodes took ~10k writes/s at p99 ~18 ms against ~8k at ~31 ms (docs/performance.md, eighteenth
/// session). In a turn, a snapshot delays the other writers only by its own commit.
/// </para>
/// </summary>
public sealed class GroupCommitSnapshotStore : SqlSnapshotStore
{
    private readonly JournalWriter _writer;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly string? _defaultSerializer;

    public GroupCommitSnapshotStore(Config config)
        : base(config)
    {
        var setup = Context.System.Settings.Setup.Get<GroupCommitJournalSetup>();
        if (!setup.HasValue)
        {
            throw new ConfigurationException($"{nameof(GroupCommitSnapshotStore)} needs a {nameof(GroupCommitJournalSetup)} in the ActorSystem's setup (PersistenceSetup.WithKvPersistence adds it).");
        }

        _serialization = Context.System.Serialization;
        _defaultSerializer = config.GetString("serializer", null);
        // A writer of its own rather than the journal's: a snapshot never waits behind journal rows on this node, nor
        // they behind it, and each has the lifetime of its actor. On SQLite its turn is another place among the host's writers.
        _writer = setup.Value.Store == StoreKind.Postgres
            ? JournalWriter.ForPostgres(setup.Value.ConnectionString, maxRowsPerCommit: 1)
            : JournalWriter.ForSqlite(setup.Value.ConnectionString, maxRowsPerCommit: 1);
        Context.GetLogger().Info("Snapshot store: saves are written by ActorHa's {0} writer", setup.Value.Store);
    }

    protected override void PostStop()
    {
        _writer.Dispose();
        base.PostStop();
    }

    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken)
    {
        // Serialized here, on the store's actor, as Akka.Persistence.Sql does: a snapshot that cannot be serialized fails
        // its save (SaveSnapshotFailure) before anything is written.
        var row = Row(metadata, snapshot);
        return _writer.RunAsync(store => store.SaveSnapshot(row));
    }

    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken)
    {
        // The criteria a partition deletes with (up to a sequence number, any time); Akka.Persistence.Sql's store ignores
        // the lower bounds of this case too.
        if (criteria.MaxSequenceNr != long.MaxValue && criteria.MaxTimeStamp == DateTime.MaxValue)
        {
            return _writer.RunAsync(store => store.DeleteSnapshots(persistenceId, criteria.MaxSequenceNr));
        }

        return base.DeleteAsync(persistenceId, criteria, cancellationToken);
    }

    /// <summary>The row Akka.Persistence.Sql's snapshot serializer builds (<c>ByteArrayLongSnapshotSerializer</c>).</summary>
    private SnapshotRowData Row(SnapshotMetadata metadata, object snapshot)
    {
        var serializer = _serialization.FindSerializerForType(snapshot.GetType(), _defaultSerializer);
        var manifest = serializer switch
        {
            SerializerWithStringManifest named => named.Manifest(snapshot),
            { IncludeManifest: true } => snapshot.GetType().TypeQualifiedName(),
            _ => "",
        };
        var bytes = Akka.Serialization.Serialization.WithTransport(_serialization.System, (serializer, snapshot), state => state.serializer.ToBinary(state.snapshot));
        return new SnapshotRowData(metadata.PersistenceId, metadata.SequenceNr, metadata.Timestamp.Ticks, bytes, serializer.Identifier, manifest);
    }
}

public static class GroupCommitSnapshotStoreHosting
{
    /// <summary>Replaces the saves and deletes of Akka.Persistence.Sql's snapshot store (plugin <c>akka.persistence.snapshot-store.sql</c>); call after WithSqlPersistence and WithGroupCommitJournal.</summary>
    public static AkkaConfigurationBuilder WithGroupCommitSnapshotStore(this AkkaConfigurationBuilder builder)
    {
        builder.AddHocon("akka.persistence.snapshot-store.sql.class = \"ActorHa.Cluster.Persistence.GroupCommitSnapshotStore, ActorHa.Cluster\"", HoconAddMode.Prepend);
        return builder;
    }
}
