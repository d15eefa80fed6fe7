using System.Collections.Immutable;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Akka.Persistence.Sql.Journal;
using Akka.Serialization;
using Akka.Util;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// Akka.Persistence.Sql's journal with its write half replaced by <see cref="JournalWriter"/> (group commit from one
/// thread with one prepared statement, on SQLite or PostgreSQL). Everything else is Akka.Persistence.Sql's: table creation, recovery (replay, highest sequence number) and the query side read
/// the rows this journal writes, which are the rows its own writer would have written (same table, columns, serializer
/// ids, manifests and tag format; specs compare them column by column).
/// </summary>
public sealed class GroupCommitJournal : SqlWriteJournal
{
    private readonly JournalWriter _writer;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly string _tagSeparator;
    private readonly Dictionary<string, Task> _inProgress = [];

    public GroupCommitJournal(Config config)
        : base(config)
    {
        var setup = Context.System.Settings.Setup.Get<GroupCommitJournalSetup>();
        if (!setup.HasValue)
        {
            throw new ConfigurationException($"{nameof(GroupCommitJournal)} needs a {nameof(GroupCommitJournalSetup)} in the ActorSystem's setup (PersistenceSetup.WithKvPersistence adds it).");
        }

        _serialization = Context.System.Serialization;
        _tagSeparator = config.GetString("tag-separator", ";");
        var maxRows = config.GetInt("batch-size", 100);
        _writer = setup.Value.Store == StoreKind.Postgres
            ? JournalWriter.ForPostgres(setup.Value.ConnectionString, maxRows)
            : JournalWriter.ForSqlite(setup.Value.ConnectionString, maxRows);
        Context.GetLogger().Info("Journal: rows are written by ActorHa's {0} writer (one thread, one prepared statement, up to {1} rows per commit)", setup.Value.Store, maxRows);
    }

    protected override void PostStop()
    {
        _writer.Dispose();
        base.PostStop();
    }

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages as IReadOnlyList<AtomicWrite> ?? messages.ToList();
        var rows = new List<JournalRowData>(writes.Count);
        Exception?[]? rejections = null;
        var now = DateTime.UtcNow.Ticks; // one clock read per call, as Akka.Persistence.Sql stamps a call's rows
        for (var i = 0; i < writes.Count; i++)
        {
            // A write whose event cannot be serialized is rejected alone (the persistent actor is told, and carries on);
            // the others are written, as Akka.Persistence.Sql does.
            var built = Rows(writes[i], now);
            if (built.IsSuccess)
            {
                rows.AddRange(built.Success.Value);
            }
            else
            {
                (rejections ??= new Exception?[writes.Count])[i] = built.Failure.Value;
            }
        }

        var written = rows.Count == 0 ? Task.CompletedTask : _writer.WriteAsync(rows);
        var persistenceId = writes[0].PersistenceId;
        _inProgress[persistenceId] = written;
        var self = Self;
        written.ContinueWith(t => self.Tell(new WriteDone(persistenceId, t)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return Acknowledge(written, rejections);

        static async Task<IImmutableList<Exception>> Acknowledge(Task written, Exception?[]? rejections)
        {
            await written.ConfigureAwait(false);
            return rejections is null ? null! : ImmutableList.CreateRange<Exception>(rejections!);
        }
    }

    public override async Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        // Recovery must see a write that is still being committed (the actor restarted meanwhile): wait for it, failed or not.
        if (_inProgress.TryGetValue(persistenceId, out var pending))
        {
            await pending.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }

        return await base.ReadHighestSequenceNrAsync(persistenceId, fromSequenceNr, cancellationToken).ConfigureAwait(false);
    }

    protected override bool ReceivePluginInternal(object message)
    {
        if (message is WriteDone done)
        {
            if (_inProgress.TryGetValue(done.PersistenceId, out var latest) && latest == done.Write)
            {
                _inProgress.Remove(done.PersistenceId);
            }

            return true;
        }

        return base.ReceivePluginInternal(message);
    }

    /// <summary>The rows Akka.Persistence.Sql's serializer builds (CSV tags), or why the write is rejected.</summary>
    private Try<JournalRowData[]> Rows(AtomicWrite write, long now)
    {
        try
        {
            var payloads = (IImmutableList<IPersistentRepresentation>)write.Payload;
            var rows = new JournalRowData[payloads.Count];
            for (var i = 0; i < rows.Length; i++)
            {
                rows[i] = Row(payloads[i], now);
            }

            return new Try<JournalRowData[]>(rows);
        }
        catch (Exception e)
        {
            return new Try<JournalRowData[]>(e);
        }
    }

    private JournalRowData Row(IPersistentRepresentation representation, long now)
    {
        var (payload, tags) = representation.Payload is Tagged tagged
            ? (tagged.Payload, tagged.Tags.Count == 0 ? "" : _tagSeparator + string.Join(_tagSeparator, tagged.Tags) + _tagSeparator)
            : (representation.Payload, "");
        var serializer = _serialization.FindSerializerForType(payload.GetType());
        var manifest = serializer switch
        {
            SerializerWithStringManifest named => named.Manifest(payload),
            { IncludeManifest: true } => payload.GetType().TypeQualifiedName(),
            _ => "",
        };

        // With the system's transport information, as Akka.Persistence.Sql serializes: an actor reference in an event
        // keeps its full address.
        var bytes = Akka.Serialization.Serialization.WithTransport(_serialization.System, (serializer, payload), state => state.serializer.ToBinary(state.payload));
        return new JournalRowData(representation.PersistenceId, representation.SequenceNr, representation.Timestamp == 0 ? now : representation.Timestamp, tags, bytes, serializer.Identifier, manifest);
    }

    private sealed record WriteDone(string PersistenceId, Task Write);
}

/// <summary>Where <see cref="GroupCommitJournal"/> writes: the store and its connection string, given in code rather than in HOCON.</summary>
public sealed class GroupCommitJournalSetup(StoreKind store, string connectionString) : Setup
{
    public StoreKind Store { get; } = store;

    public string ConnectionString { get; } = connectionString;
}

public static class GroupCommitJournalHosting
{
    /// <summary>Replaces the write half of Akka.Persistence.Sql's journal (plugin <c>akka.persistence.journal.sql</c>); call after WithSqlPersistence.</summary>
    public static AkkaConfigurationBuilder WithGroupCommitJournal(this AkkaConfigurationBuilder builder, StoreKind store, string connectionString)
    {
        builder.AddSetup(new GroupCommitJournalSetup(store, connectionString));
        builder.AddHocon("akka.persistence.journal.sql.class = \"ActorHa.Cluster.Persistence.GroupCommitJournal, ActorHa.Cluster\"", HoconAddMode.Prepend);
        return builder;
    }
}
