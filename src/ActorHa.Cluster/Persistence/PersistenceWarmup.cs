using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// Starts the journal and snapshot store at node startup and runs each query path once (recover, persist,
/// delete), so the first partition this node takes over does not pay for it. Akka.Persistence creates its
/// plugins on first use, and their first queries compile LINQ expressions and JIT the data path: measured
/// here, a node that had hosted no partition yet (a freshly restarted one, which is exactly where a
/// failover's partitions tend to go) took ~0.5 s before the first snapshot load and ~0.3 s more before
/// the first replay, for all of its new partitions at once.
/// </summary>
public sealed class PersistenceWarmup
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsDone => _done.Task.IsCompleted;

    /// <summary>Set when the warm-up found the store damaged (the node then shuts down): what to tell the operator.</summary>
    public string? Damage { get; private set; }

    internal void MarkDone() => _done.TrySetResult();

    internal void MarkDamaged(string damage) => Damage = damage;
}

/// <summary>Errors that say the store's files or pages are damaged: retrying cannot help, restoring a backup can.</summary>
public static class StoreDamage
{
    private const int SqliteCorrupt = 11;
    private const int SqliteNotADatabase = 26;

    /// <summary>The driver's message when <paramref name="error"/> (or an error inside it) reports damage; null otherwise.</summary>
    public static string? Describe(Exception? error) => error switch
    {
        null => null,
        Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteCorrupt or SqliteNotADatabase } sqlite => sqlite.Message,
        // data_corrupted, index_corrupted
        Npgsql.PostgresException { SqlState: "XX001" or "XX002" } postgres => postgres.Message,
        AggregateException aggregate => aggregate.InnerExceptions.Select(Describe).FirstOrDefault(d => d is not null),
        _ => Describe(error.InnerException),
    };

    /// <summary>
    /// Why a partition's recovery cannot succeed however often it is retried, as the store stands: the store reports
    /// damage, or a stored event cannot be deserialized (bytes overwritten or cut short, or written by a newer version
    /// this one does not know). Null for what a retry may cure (a connection refused, a timeout, a lock).
    /// </summary>
    public static string? Unreadable(Exception? error) => Describe(error) is { } damage
        ? $"the store reports damage ({damage})"
        : FindSerializationError(error) is { } serialization ? $"a stored event cannot be read ({serialization.Message})" : null;

    private static System.Runtime.Serialization.SerializationException? FindSerializationError(Exception? error) => error switch
    {
        null => null,
        System.Runtime.Serialization.SerializationException serialization => serialization,
        AggregateException aggregate => aggregate.InnerExceptions.Select(FindSerializationError).FirstOrDefault(e => e is not null),
        _ => FindSerializationError(error.InnerException),
    };
}

/// <summary>A throw-away persistent actor, one id per node address: recovers, writes one event, deletes it, stops.</summary>
public sealed class PersistenceWarmupActor : ReceivePersistentActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly DateTime _startedAt = DateTime.UtcNow;
    private readonly PersistenceWarmup _warmup;

    public PersistenceWarmupActor(string persistenceId, PersistenceWarmup warmup)
    {
        PersistenceId = persistenceId;
        _warmup = warmup;
        Recover<string>(_ => { });
        Recover<RecoveryCompleted>(_ => Persist("warmup", _ => DeleteMessages(LastSequenceNr)));
        Command<DeleteMessagesSuccess>(_ =>
        {
            _log.Info("Journal and snapshot store warmed up in {0:0} ms", (DateTime.UtcNow - _startedAt).TotalMilliseconds);
            Finish();
        });
        Command<DeleteMessagesFailure>(failure =>
        {
            _log.Warning(failure.Cause, "Persistence warm-up could not delete its event; continuing");
            Finish();
        });
    }

    public override string PersistenceId { get; }

    // Warming up is an optimisation: a failure must never keep the node from serving.
    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _log.Warning(cause, "Persistence warm-up write failed; continuing");
        _warmup.MarkDone();
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        if (StoreDamage.Describe(reason) is { } damage)
        {
            // A damaged store (found: a truncated or overwritten SQLite file) fails every partition's recovery for ever,
            // while the node would report ready: stop, saying so in one line (actorha node exits with code 5).
            _log.Error(reason, "The store is damaged ({0}); shutting this node down", damage);
            _warmup.MarkDamaged(damage);
            CoordinatedShutdown.Get(Context.System).Run(StoreDamagedReason.Instance);
            return;
        }

        _log.Warning(reason, "Persistence warm-up recovery failed; continuing");
        _warmup.MarkDone();
    }

    private void Finish()
    {
        _warmup.MarkDone();
        Context.Stop(Self);
    }
}

/// <summary>Why a node shut down when its warm-up found the store damaged.</summary>
public sealed class StoreDamagedReason : CoordinatedShutdown.Reason
{
    public static readonly StoreDamagedReason Instance = new();

    private StoreDamagedReason()
    {
    }

    // Akka's own exit code is not used (exit-clr is off); `actorha node` returns 5 for this.
    public override int ExitCode => 5;
}

public static class PersistenceWarmupSetup
{
    public static AkkaConfigurationBuilder WithPersistenceWarmup(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _, resolver) =>
        {
            var warmup = resolver.GetService<PersistenceWarmup>();
            var address = Akka.Cluster.Cluster.Get(system).SelfAddress;
            system.ActorOf(Props.Create(() => new PersistenceWarmupActor($"actorha-warmup/{address.Host}:{address.Port}", warmup)), "persistence-warmup");
        });
}
