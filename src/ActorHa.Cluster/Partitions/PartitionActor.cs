using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;

namespace ActorHa.Cluster.Partitions;

/// <summary>Messages the partition actors understand besides the domain protocol.</summary>
public static class PartitionControl
{
    /// <summary>Stop once the writes in flight are durable and answered (sharding's hand-off message).</summary>
    public sealed record Stop
    {
        public static readonly Stop Instance = new();
    }

    /// <summary>Fault injection for specs and chaos runs: the partition throws, its supervisor restarts it.</summary>
    public sealed record InjectFailure(string Reason);

    /// <summary><see cref="InjectFailure"/> addressed through the shard region.</summary>
    public sealed record InjectFailureFor(PartitionId Partition, string Reason);
}

/// <summary>
/// One data partition: an event-sourced actor that owns every key hashing to it. The actor is thin:
/// <see cref="PartitionState"/> decides and applies, the actor persists, then replies.
/// Writes are group-committed: while one batch is being written, newly arrived writes queue up and
/// go to the journal together as the next batch, each acknowledged only after its batch is durable.
/// Reads answer from the committed state, which never contains an unacknowledged write.
/// </summary>
public sealed class PartitionActor : ReceivePersistentActor
{
    /// <summary>At most this many writes in one journal write (<see cref="TakeBatch"/>).</summary>
    public const int MaxBatchWrites = 1000;

    /// <summary>At most this many bytes of values in one journal write, unless a single write is larger.</summary>
    public const int MaxBatchBytes = 4 * 1024 * 1024;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PartitionId _partition;
    private readonly int _snapshotEvery;
    private readonly TimeProvider _clock;
    private readonly ILeaseGuard _lease;
    private readonly long _generation;
    private readonly LocalPartitions? _local;
    private readonly LargeValueReplies? _large;

    private PartitionState _state = PartitionState.Empty;
    private List<(IWriteCommand Command, IActorRef ReplyTo)> _queued = [];
    private List<(IActorRef ReplyTo, IPartitionReply Reply)>? _inFlight;
    private readonly DateTime _startedAt = DateTime.UtcNow;
    private DateTime? _firstReplayedAt;
    private int _eventsSinceSnapshot;
    private bool _stopRequested;

    public PartitionActor(PartitionId partition, int snapshotEvery, ILeaseGuard lease, long generation, TimeProvider clock, LocalPartitions? local, LargeValueReplies? large = null)
    {
        _partition = partition;
        _large = large;
        _local = local;
        _snapshotEvery = snapshotEvery;
        _lease = lease;
        _generation = generation;
        _clock = clock;

        Recover<SnapshotOffer>(offer =>
        {
            _firstReplayedAt ??= DateTime.UtcNow;
            _state = (PartitionState)offer.Snapshot;
        });
        Recover<IPartitionEvent>(e =>
        {
            _firstReplayedAt ??= DateTime.UtcNow;
            _state = _state.Apply(e);
            _eventsSinceSnapshot++;
        });
        // Where recovery time goes: until the first snapshot or event arrives (snapshot load, highest sequence
        // number, first replay query), then the replay itself.
        Recover<RecoveryCompleted>(_ =>
        {
            _log.Info("Partition {0} recovered {1} keys at sequence number {2} in {3:0} ms (first snapshot/event after {4:0} ms)",
                _partition, _state.Entries.Count, LastSequenceNr, (DateTime.UtcNow - _startedAt).TotalMilliseconds, ((_firstReplayedAt ?? DateTime.UtcNow) - _startedAt).TotalMilliseconds);
            if (!_stopRequested)
            {
                _local?.Register(_partition, Self);
            }

            Context.Parent.Tell(PartitionSupervisor.ChildRecovered.Instance);
        });

        // Every answer is given only while this node's lease guarantees nobody else owns the partition:
        // a node that was frozen or cut off, and whose partition moved meanwhile, must answer nothing stale.
        // A caller on another node (through the shard regions) gets a large value as a pointer to this node's HTTP API.
        Command<Queries.Get>(get =>
        {
            if (!Owns)
            {
                Sender.Tell(LeaseLapsed());
                return;
            }

            var answer = _state.Answer(get);
            Sender.Tell(_large is null ? answer : _large.For(Sender, answer));
        });
        Command<Queries.ListKeys>(list => Sender.Tell(Owns ? _state.Answer(list) : LeaseLapsed()));
        // Only an owner says where it is: a node that cannot answer for the partition must not draw its large writes.
        Command<Queries.Locate>(locate => Sender.Tell(Owns ? _large?.Locate(locate) ?? new Replies.Located(locate.Key, null) : LeaseLapsed()));
        Command<IWriteCommand>(command =>
        {
            if (!Owns)
            {
                // Not written, so the client may safely retry elsewhere.
                Sender.Tell(LeaseLapsed());
                return;
            }

            _queued.Add((command, Sender));
            if (_inFlight is null)
            {
                WriteQueued();
            }
        });
        // Older snapshots go; events never do (a partition never calls DeleteMessages): the journal alone must be able to rebuild
        // the partition, because an unreadable snapshot is skipped (snapshot-is-optional in hocon/actorha.conf).
        Command<SaveSnapshotSuccess>(success =>
            DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(failure =>
            _log.Warning(failure.Cause, "Partition {0} could not save a snapshot; it will recover from older events", _partition));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(failure => _log.Warning(failure.Cause, "Partition {0} could not delete old snapshots", _partition));
        Command<PartitionControl.Stop>(_ =>
        {
            // From now on requests go through the region, which holds them until the partition runs elsewhere.
            _local?.Unregister(_partition, Self);
            _stopRequested = true;
            if (_inFlight is null)
            {
                Context.Stop(Self);
            }
        });
        Command<PartitionControl.InjectFailure>(fault => throw new InjectedFailureException(fault.Reason));
    }

    public override string PersistenceId => PersistenceIdFor(_partition);

    public static string PersistenceIdFor(PartitionId partition) => $"partition-{partition}";

    /// <param name="generation">The lease generation the partition was acquired under; a later generation voids it.</param>
    /// <param name="local">Where the partition announces itself to this node's <see cref="PartitionClient"/> once it runs; null: not at all.</param>
    /// <param name="large">How large values go to callers on other nodes; null: as they are.</param>
    public static Props Props(PartitionId partition, int snapshotEvery, ILeaseGuard lease, long generation, TimeProvider? clock = null, LocalPartitions? local = null, LargeValueReplies? large = null) =>
        Akka.Actor.Props.Create(() => new PartitionActor(partition, snapshotEvery, lease, generation, clock ?? TimeProvider.System, local, large));

    /// <summary>
    /// True while this incarnation may answer: the lease is current and of the generation it was acquired
    /// under. A new generation means the old lease expired in the store, so this state may be stale: stop,
    /// and let the supervisor acquire again and recover from the journal.
    /// </summary>
    private bool Owns
    {
        get
        {
            // Validity first, generation second. The renew thread takes a new generation before the renewal that
            // makes validity true again under it; read the other way round, an old-generation partition could
            // read its generation just before that turnover and the new generation's validity just after it.
            var valid = _lease.IsValid;
            if (_lease.Generation != _generation)
            {
                Context.Stop(Self);
                return false;
            }

            return valid;
        }
    }

    private Replies.Unavailable LeaseLapsed() => new($"this node's lease on partition {_partition} is not current", TimeSpan.FromMilliseconds(500));

    private void WriteQueued()
    {
        if (!Owns)
        {
            Reply(_queued.Select(q => (q.ReplyTo, (IPartitionReply)LeaseLapsed())).ToList());
            _queued = [];
            if (_stopRequested)
            {
                // Reached from the end of a write during a hand-off: nothing is in flight now, so the hand-off may end.
                Context.Stop(Self);
            }

            return;
        }

        var batch = TakeBatch();
        var now = DateTimeOffset.FromUnixTimeMilliseconds(_clock.GetUtcNow().ToUnixTimeMilliseconds());

        // Decide every command against a tentative state that already contains the batch's earlier events,
        // so two writes to one key in one batch get consecutive versions and CAS sees its predecessor.
        var tentative = _state;
        var events = new List<IPartitionEvent>(batch.Count);
        var replies = new List<(IActorRef, IPartitionReply)>(batch.Count);
        foreach (var (command, replyTo) in batch)
        {
            if (Keys.Validate(command.Key) is { } problem)
            {
                replies.Add((replyTo, new Replies.InvalidKey(command.Key, problem)));
                continue;
            }

            var decision = tentative.Decide(command, now);
            if (decision.Event is { } e)
            {
                tentative = tentative.Apply(e);
                events.Add(e);
            }

            replies.Add((replyTo, decision.Reply));
        }

        if (events.Count == 0)
        {
            // Rejections decided against committed state only: safe to answer now.
            Reply(replies);
            if (_queued.Count > 0)
            {
                // The batch was bounded (TakeBatch) and wrote nothing (all copies answered from memory, say): what is
                // still queued has no write in flight to wait for, so it goes now.
                WriteQueued();
                return;
            }

            if (_stopRequested)
            {
                // Reached from the end of a write during a hand-off (the queued copies were all answered from memory):
                // nothing is in flight now, so the hand-off may end instead of waiting out sharding's handoff-timeout.
                Context.Stop(Self);
            }

            return;
        }

        // Every reply of the batch, rejections included, waits for the write: a rejection may have been
        // decided against an earlier write of this batch that is not durable yet.
        _inFlight = replies;
        var remaining = events.Count;
        PersistAllAsync(events, e =>
        {
            _state = _state.Apply(e);
            _eventsSinceSnapshot++;
            if (--remaining == 0)
            {
                OnBatchDurable();
            }
        });
    }

    /// <summary>
    /// The queued writes that go into the next journal write: all of them, up to <see cref="MaxBatchWrites"/> writes or
    /// <see cref="MaxBatchBytes"/> of values (at least one write). After a stall (a slow journal, a partition that was
    /// starting), clients and their retries can have queued thousands of writes, up to 1 MiB each: one transaction of
    /// all of them would hold the journal for as long as it takes to write, and the rest wait for the next batch.
    /// </summary>
    private List<(IWriteCommand Command, IActorRef ReplyTo)> TakeBatch()
    {
        var count = NextBatchLength(_queued.Select(q => q.Command));
        if (count == _queued.Count)
        {
            var all = _queued;
            _queued = [];
            return all;
        }

        var batch = _queued.GetRange(0, count);
        _queued.RemoveRange(0, count);
        return batch;
    }

    /// <summary>How many of <paramref name="queued"/>, from the first, the next journal write takes.</summary>
    internal static int NextBatchLength(IEnumerable<IWriteCommand> queued)
    {
        var count = 0;
        var bytes = 0L;
        foreach (var command in queued)
        {
            bytes += command is Commands.Put put ? put.Value.Length : 0;
            if (count == MaxBatchWrites || (count > 0 && bytes > MaxBatchBytes))
            {
                break;
            }

            count++;
        }

        return count;
    }

    private void OnBatchDurable()
    {
        var replies = _inFlight!;
        _inFlight = null;
        if (Owns)
        {
            Reply(replies);
        }
        else
        {
            // Durable, but possibly only after the lease ran out (this process was frozen mid-write): a new
            // owner may not have seen it, so the outcome is unknown to the client, and this incarnation stops.
            _log.Warning("Partition {0}: this node's lease was not current when a write of {1} commands became durable; answering 'outcome unknown' and stopping", _partition, replies.Count);
            var unknown = new Replies.Unavailable($"partition {_partition} lost its lease during the write; the outcome is unknown", TimeSpan.FromMilliseconds(500));
            Reply(replies.Select(r => (r.ReplyTo, (IPartitionReply)unknown)).ToList());
            Context.Stop(Self);
            return;
        }


        if (_eventsSinceSnapshot >= _snapshotEvery)
        {
            _eventsSinceSnapshot = 0;
            SaveSnapshot(_state);
        }

        if (_queued.Count > 0)
        {
            WriteQueued();
        }
        else if (_stopRequested)
        {
            Context.Stop(Self);
        }
    }

    private static void Reply(List<(IActorRef ReplyTo, IPartitionReply Reply)> replies)
    {
        foreach (var (replyTo, reply) in replies)
        {
            replyTo.Tell(reply);
        }
    }

    protected override void PostStop()
    {
        _local?.Unregister(_partition, Self);
        // Whatever is still waiting learns now that it must retry, instead of waiting out its timeout.
        // For a write in flight the outcome is unknown (the journal may have committed it): the client
        // must treat the retry as indeterminate, which is why the reply is Unavailable, not a rejection.
        var unavailable = new Replies.Unavailable($"partition {_partition} stopped", TimeSpan.FromSeconds(1));
        foreach (var (replyTo, _) in _inFlight ?? [])
        {
            replyTo.Tell(unavailable);
        }

        foreach (var (_, replyTo) in _queued)
        {
            replyTo.Tell(unavailable);
        }

        _inFlight = null;
        _queued = [];
        base.PostStop();
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "Partition {0} failed to persist at sequence number {1}; stopping so its supervisor restarts it", _partition, sequenceNr);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    /// <summary>
    /// The journal refused the batch before writing it (Akka.Persistence.Sql does so when an event cannot be
    /// serialized). Akka then skips the batch's handlers, so the write would stay in flight for ever and every later
    /// command queue behind it. Stop instead: the waiting clients are told the outcome is unknown (PostStop), and the
    /// supervisor starts a fresh incarnation from the journal.
    /// </summary>
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "Partition {0}: the journal rejected a write at sequence number {1}; stopping so its supervisor restarts it", _partition, sequenceNr);
        Context.Stop(Self);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        if (StoreDamage.Unreadable(reason) is { } unreadable)
        {
            // Retrying every few seconds cannot cure this, and a caller should not wait out its timeout to learn nothing:
            // the supervisor refuses this partition's requests at once and tries again rarely. Akka has logged the stack.
            // A snapshot that cannot be read never gets here (it is skipped), so what failed is an event after the last
            // one replayed.
            Context.Parent.Tell(new PartitionSupervisor.ChildUnrecoverable($"{unreadable}; the last event replayed was sequence number {LastSequenceNr}"));
        }
        else
        {
            _log.Error(reason, "Partition {0} failed to recover; its supervisor will retry", _partition);
        }

        base.OnRecoveryFailure(reason, message);
    }
}

public sealed class InjectedFailureException(string reason) : Exception(reason);
