using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Event;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// The sharding entity for one partition. Before the <see cref="PartitionActor"/> may recover and serve, this
/// node must own the partition in the store (<see cref="IOwnershipStore.TryAcquire"/>, through this node's
/// <see cref="PartitionClaims"/>): free, released, ours,
/// or held by a node whose lease has expired. That, not cluster membership, is what keeps two nodes from
/// serving one partition, so downing can be fast without being trusted for safety.
/// Requests that arrive while the partition is being acquired, recovered or restarted are buffered and
/// delivered once it runs; those waiting longer than <see cref="BufferTimeout"/> are answered with a
/// retryable <see cref="Replies.Unavailable"/>. A failed child is stopped and recreated after an exponential
/// backoff; on hand-off the partition is released once its child has stopped, so the next owner need not
/// wait for this node's lease to expire, and a supervisor stopped by force (sharding's handoff-timeout) releases
/// it as it stops.
/// A child that cannot be recovered from the store (<see cref="ChildUnrecoverable"/>: damaged pages or bytes, an event
/// this version cannot read) is not retried every few seconds: every request is refused at once with
/// <see cref="Replies.Unrecoverable"/>, the partition is listed in <see cref="UnrecoverablePartitions"/> for /v1/cluster,
/// and recovery is tried again every <see cref="DefaultUnrecoverableRetry"/> (30 s), in case the cause was passing (a newer node's
/// event read during a rolling upgrade) or the store was repaired.
/// </summary>
public sealed class PartitionSupervisor : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan BufferTimeout = TimeSpan.FromSeconds(2);
    private const int MaxBuffered = 10_000;
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AcquirePoll = TimeSpan.FromMilliseconds(100);
    /// <summary>How long an unrecoverable partition waits before the next recovery attempt, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultUnrecoverableRetry = TimeSpan.FromSeconds(30);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PartitionId _partition;
    private readonly Func<long, Props> _childProps;
    private readonly PartitionClaims _claims;
    private readonly NodeLease _lease;
    private readonly Queue<(object Message, IActorRef Sender, DateTime At)> _buffer = new();
    private IActorRef? _child;
    private int _consecutiveFailures;
    private DateTime _childStartedAt;
    private bool _stopping;
    private long _epoch;
    private long _generation;
    private bool _released;
    private readonly DateTime _createdAt = DateTime.UtcNow;
    private readonly UnrecoverablePartitions? _unrecoverablePartitions;
    private readonly TimeSpan _unrecoverableRetry;
    private string? _unrecoverable;
    private int _unrecoverableAttempts;
    private DateTime _unrecoverableSince;
    private DateTime _nextAttemptAt;
    private bool _childRecovered;

    /// <param name="childProps">The partition actor's props for a lease generation.</param>
    /// <param name="unrecoverable">Where this node lists the partitions it cannot recover; null: nowhere.</param>
    /// <param name="unrecoverableRetry">Between recovery attempts of an unrecoverable partition; null: <see cref="DefaultUnrecoverableRetry"/>.</param>
    public PartitionSupervisor(PartitionId partition, Func<long, Props> childProps, PartitionClaims claims, NodeLease lease, UnrecoverablePartitions? unrecoverable = null, TimeSpan? unrecoverableRetry = null)
    {
        _unrecoverableRetry = unrecoverableRetry ?? DefaultUnrecoverableRetry;
        _partition = partition;
        _childProps = childProps;
        _claims = claims;
        _lease = lease;
        _unrecoverablePartitions = unrecoverable;
        Acquiring();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PartitionId partition, Func<long, Props> childProps, PartitionClaims claims, NodeLease lease, UnrecoverablePartitions? unrecoverable = null, TimeSpan? unrecoverableRetry = null) =>
        Akka.Actor.Props.Create(() => new PartitionSupervisor(partition, childProps, claims, lease, unrecoverable, unrecoverableRetry));

    protected override void PreStart()
    {
        Self.Tell(TryAcquire.Instance);
        Timers.StartPeriodicTimer(ExpireBuffered.Instance, ExpireBuffered.Instance, TimeSpan.FromMilliseconds(250));
    }

    // Stop, never restart in place: a persistent actor restarted in place would recover concurrently with
    // writes of its previous incarnation still queued in the journal; a fresh child after a backoff does not.
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    /// <summary>Not running: taking ownership (first start, or after a failure and its backoff).</summary>
    private void Acquiring()
    {
        Receive<TryAcquire>(_ =>
        {
            if (!_lease.IsValid)
            {
                // Our own lease is not (yet, or no longer) current: owning anything now would be unsafe.
                Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, AcquirePoll);
                return;
            }

            var (node, generation) = _lease.Current;
            _claims.AcquireAsync(_partition, node).PipeTo(Self, success: result => new Acquired(result, generation), failure: e => new AcquireFailed(e));
        });
        Receive<Acquired>(acquired =>
        {
            var result = acquired.Result;
            if (result.Acquired)
            {
                _epoch = result.Epoch;
                _generation = acquired.Generation;
                StartChild();
                return;
            }

            // Someone else's lease still covers the partition: retry just after it would expire.
            var wait = result.RetryAfter < AcquirePoll ? result.RetryAfter + TimeSpan.FromMilliseconds(10) : AcquirePoll;
            Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, wait);
        });
        Receive<AcquireFailed>(failed =>
        {
            _log.Warning("Partition {0}: taking ownership failed ({1}); retrying", _partition, failed.Cause.Message);
            Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, AcquirePoll);
        });
        Receive<PartitionControl.Stop>(_ => StopWithoutChild());
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<ChildUnrecoverable>(unrecoverable =>
        {
            // The child's Terminated came first and scheduled a short backoff: wait the long one instead.
            OnUnrecoverable(unrecoverable);
            ScheduleUnrecoverableRetry();
        });
        Receive<ChildRecovered>(_ => { });
        Receive<IPartitionMessage>(message =>
        {
            if (_unrecoverable is not null)
            {
                Sender.Tell(UnrecoverableReply());
                return;
            }

            Buffer(message);
        });
        Receive<PartitionControl.InjectFailure>(_ => { });
    }

    private void Running()
    {
        Receive<Terminated>(t => t.ActorRef.Equals(_child), _ => OnChildTerminated());
        Receive<PartitionControl.Stop>(stop =>
        {
            _stopping = true;
            _child!.Tell(stop);
        });
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<ChildUnrecoverable>(OnUnrecoverable);
        Receive<ChildRecovered>(_ => Sender.Equals(_child), _ => OnRecovered());
        Receive<ChildRecovered>(_ => { });
        ReceiveAny(message =>
        {
            if (!_childRecovered && message is IPartitionMessage request)
            {
                if (_unrecoverable is not null)
                {
                    // Another recovery attempt is running; until it has succeeded, the partition is what it was.
                    Sender.Tell(UnrecoverableReply());
                    return;
                }

                // Held here, not in the recovering child: a child whose recovery fails stops, and Akka drops what it had
                // stashed meanwhile, so those callers would learn nothing until their own timeout.
                Buffer(request);
                return;
            }

            _child!.Forward(message);
        });
    }

    /// <summary>Child stopped on hand-off: give the partition up, then stop.</summary>
    private void Releasing()
    {
        Receive<Released>(_ =>
        {
            _released = true;
            Context.Stop(Self);
        });
        // An acquisition still in flight when the stop came: the release queued after it undoes it.
        Receive<Acquired>(_ => { });
        Receive<AcquireFailed>(_ => { });
        Receive<PartitionControl.Stop>(_ => { });
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<ChildUnrecoverable>(_ => { });
        Receive<ChildRecovered>(_ => { });
        Receive<IPartitionMessage>(message => Sender.Tell(Moving()));
    }

    private void StartChild()
    {
        _log.Info("Partition {0} acquired at epoch {1} (lease generation {2}) {3:0} ms after its supervisor started", _partition, _epoch, _generation, (DateTime.UtcNow - _createdAt).TotalMilliseconds);
        _child = Context.Watch(Context.ActorOf(_childProps(_generation), "p"));
        _childStartedAt = DateTime.UtcNow;
        _childRecovered = false;
        Become(Running);
    }

    private void OnChildTerminated()
    {
        _child = null;
        if (_stopping)
        {
            Release();
            return;
        }

        if (_lease.Generation != _generation)
        {
            // The lease was lost and taken anew: acquire under the new generation and recover from the journal.
            _log.Warning("Partition {0}: node lease generation changed; acquiring again", _partition);
            Become(Acquiring);
            Self.Tell(TryAcquire.Instance);
            return;
        }

        if (DateTime.UtcNow - _childStartedAt > HealthyAfter)
        {
            _consecutiveFailures = 0;
        }

        if (_unrecoverable is not null)
        {
            // Said once when it was found (OnUnrecoverable); each later attempt says how it ended there too.
            Become(Acquiring);
            ScheduleUnrecoverableRetry();
            return;
        }

        var delay = Backoff();
        _consecutiveFailures++;
        _log.Warning("Partition {0} stopped unexpectedly; restarting it in {1} ms (failure {2} in a row)", _partition, (int)delay.TotalMilliseconds, _consecutiveFailures);
        Become(Acquiring);
        Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, delay);
    }

    private void ScheduleUnrecoverableRetry()
    {
        Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, _unrecoverableRetry);
        _nextAttemptAt = DateTime.UtcNow + _unrecoverableRetry;
    }

    private void OnUnrecoverable(ChildUnrecoverable unrecoverable)
    {
        _unrecoverableAttempts++;
        if (_unrecoverable is null)
        {
            _unrecoverableSince = DateTime.UtcNow;
            _log.Error(
                "Partition {0} cannot be recovered from the store: {1}. Its requests are refused at once (503, partition-unrecoverable) and recovery is tried again every {2:0} s; if the store is damaged, restore it from a backup (docs/production.md)",
                _partition, unrecoverable.Reason, _unrecoverableRetry.TotalSeconds);
        }
        else
        {
            _log.Warning("Partition {0} still cannot be recovered (attempt {1}, since {2:u}): {3}", _partition, _unrecoverableAttempts, _unrecoverableSince, unrecoverable.Reason);
        }

        _unrecoverable = unrecoverable.Reason;
        _nextAttemptAt = DateTime.UtcNow + _unrecoverableRetry;
        _unrecoverablePartitions?.MarkLocal(_partition, unrecoverable.Reason);

        // Whatever waited for this partition to start learns it now rather than at the buffer timeout.
        while (_buffer.TryDequeue(out var buffered))
        {
            buffered.Sender.Tell(UnrecoverableReply());
        }
    }

    private void OnRecovered()
    {
        _childRecovered = true;
        while (_buffer.TryDequeue(out var buffered))
        {
            // A hand-off that came during the recovery reached the child first: it stops without serving these.
            if (_stopping)
            {
                buffered.Sender.Tell(Moving());
            }
            else
            {
                _child!.Tell(buffered.Message, buffered.Sender);
            }
        }

        if (_unrecoverable is null)
        {
            return;
        }

        _log.Info("Partition {0} recovered at attempt {1}; it could not be recovered since {2:u}", _partition, _unrecoverableAttempts + 1, _unrecoverableSince);
        _unrecoverable = null;
        _unrecoverableAttempts = 0;
        _consecutiveFailures = 0;
        _unrecoverablePartitions?.ClearLocal(_partition);
    }

    /// <summary>For a request this supervisor will not serve because the partition is leaving it: retried elsewhere at once.</summary>
    private Replies.Unavailable Moving() => new($"partition {_partition} is moving", TimeSpan.FromMilliseconds(200));

    private Replies.Unrecoverable UnrecoverableReply()
    {
        var wait = _nextAttemptAt - DateTime.UtcNow;
        return new Replies.Unrecoverable(_partition, _unrecoverable!, wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1));
    }

    private void StopWithoutChild()
    {
        // Nothing runs here, but the partition may be ours (acquired, child not started yet) or about to be (an
        // acquisition in flight): release anyway. The release is queued after any acquisition, so it undoes it; a row
        // left held by this live node would keep the partition's next owner waiting for as long as this node lives.
        _stopping = true;
        Release();
    }

    private void Release()
    {
        Become(Releasing);
        _claims.ReleaseAsync(_partition).PipeTo(Self, success: () => Released.Instance, failure: _ => Released.Instance);
    }

    // Stopped without having released: sharding's handoff-timeout stops a supervisor whose child did not stop in time
    // (a journal write that never completes), and a stop can come between the release and its answer. Without this,
    // the row stays held by this live node and the partition's next owner waits for as long as this node lives.
    // Safe even if a successor for this partition starts on this node at once: its acquisition queues behind this.
    protected override void PostStop()
    {
        // Stopped with requests still held (a hand-off before the partition ran here): they go elsewhere, not nowhere.
        while (_buffer.TryDequeue(out var buffered))
        {
            buffered.Sender.Tell(Moving());
        }

        if (_unrecoverable is not null)
        {
            // Listed by whichever node holds the partition next, if it cannot recover it either.
            _unrecoverablePartitions?.ClearLocal(_partition);
        }

        if (!_released)
        {
            _ = _claims.ReleaseAsync(_partition);
        }
    }

    // A restart (nothing here throws today, but a restart would be the default for a failing entity) stops the child
    // without waiting for it: releasing then, as PostStop does, could hand the row to another node while the old child
    // still finishes a message. The new incarnation acquires the row again as its own instead.
    protected override void PreRestart(Exception reason, object message)
    {
        foreach (var child in Context.GetChildren())
        {
            Context.Unwatch(child);
            Context.Stop(child);
        }
    }

    private void Buffer(IPartitionMessage message)
    {
        if (_buffer.Count >= MaxBuffered)
        {
            Sender.Tell(new Replies.Unavailable($"partition {_partition} is starting and its buffer is full", Backoff()));
            return;
        }

        _buffer.Enqueue((message, Sender, DateTime.UtcNow));
    }

    private void ExpireOldBuffered()
    {
        var cutoff = DateTime.UtcNow - BufferTimeout;
        while (_buffer.TryPeek(out var oldest) && oldest.At < cutoff)
        {
            _buffer.Dequeue();
            oldest.Sender.Tell(new Replies.Unavailable($"partition {_partition} is starting", TimeSpan.FromMilliseconds(500)));
        }
    }

    private TimeSpan Backoff()
    {
        var factor = Math.Pow(2, Math.Min(_consecutiveFailures, 10));
        var ms = Math.Min(MaxBackoff.TotalMilliseconds, MinBackoff.TotalMilliseconds * factor);
        return TimeSpan.FromMilliseconds(ms * (1 + (Random.Shared.NextDouble() * 0.2)));
    }

    /// <summary>From the child: its recovery failed in a way retrying soon cannot cure (<see cref="StoreDamage.Unreadable"/>).</summary>
    public sealed record ChildUnrecoverable(string Reason);

    /// <summary>From the child: it has recovered and runs.</summary>
    public sealed record ChildRecovered
    {
        public static readonly ChildRecovered Instance = new();
    }

    private sealed record TryAcquire
    {
        public static readonly TryAcquire Instance = new();
    }

    private sealed record Acquired(AcquireResult Result, long Generation);

    private sealed record AcquireFailed(Exception Cause);

    private sealed record Released
    {
        public static readonly Released Instance = new();
    }

    private sealed record ExpireBuffered
    {
        public static readonly ExpireBuffered Instance = new();
    }
}
