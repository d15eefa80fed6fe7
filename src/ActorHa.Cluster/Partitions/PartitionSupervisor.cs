using ActorHa.Cluster.Leases;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Event;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// The sharding entity for one partition. Before the <see cref="PartitionActor"/> may recover and serve, this
/// node must own the partition in the store (<see cref="IOwnershipStore.TryAcquire"/>): free, released, ours,
/// or held by a node whose lease has expired. That, not cluster membership, is what keeps two nodes from
/// serving one partition, so downing can be fast without being trusted for safety.
/// Requests that arrive while the partition is being acquired, recovered or restarted are buffered and
/// delivered once it runs; those waiting longer than <see cref="BufferTimeout"/> are answered with a
/// retryable <see cref="Replies.Unavailable"/>. A failed child is stopped and recreated after an exponential
/// backoff; on hand-off the partition is released once its child has stopped, so the next owner need not
/// wait for this node's lease to expire.
/// </summary>
public sealed class PartitionSupervisor : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan BufferTimeout = TimeSpan.FromSeconds(2);
    private const int MaxBuffered = 10_000;
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AcquirePoll = TimeSpan.FromMilliseconds(100);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PartitionId _partition;
    private readonly Func<long, Props> _childProps;
    private readonly IOwnershipStore _store;
    private readonly NodeLease _lease;
    private readonly Queue<(object Message, IActorRef Sender, DateTime At)> _buffer = new();
    private IActorRef? _child;
    private int _consecutiveFailures;
    private DateTime _childStartedAt;
    private bool _stopping;
    private long _epoch;
    private long _generation;
    private bool _acquireInFlight;
    // Every lease id this partition may be held under in the store (usually one; two after a generation change),
    // released on stop. An attempt counts from when it is sent: it may commit even when its answer never arrives.
    private readonly HashSet<string> _mayHold = [];
    private readonly DateTime _createdAt = DateTime.UtcNow;

    /// <param name="childProps">The partition actor's props for a lease generation.</param>
    public PartitionSupervisor(PartitionId partition, Func<long, Props> childProps, IOwnershipStore store, NodeLease lease)
    {
        _partition = partition;
        _childProps = childProps;
        _store = store;
        _lease = lease;
        Acquiring();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PartitionId partition, Func<long, Props> childProps, IOwnershipStore store, NodeLease lease) =>
        Akka.Actor.Props.Create(() => new PartitionSupervisor(partition, childProps, store, lease));

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
            var partition = _partition;
            var store = _store;
            _acquireInFlight = true;
            _mayHold.Add(node);
            Task.Run(() => new Acquired(store.TryAcquire(partition, node), generation)).PipeTo(Self, failure: e => new AcquireFailed(e));
        });
        Receive<Acquired>(acquired =>
        {
            _acquireInFlight = false;
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
            _acquireInFlight = false;
            _log.Warning("Partition {0}: taking ownership failed ({1}); retrying", _partition, failed.Cause.Message);
            Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, AcquirePoll);
        });
        Receive<PartitionControl.Stop>(_ => StopWithoutChild());
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<IPartitionMessage>(message => Buffer(message));
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
        Receive<ExpireBuffered>(_ => { });
        ReceiveAny(message => _child!.Forward(message));
    }

    /// <summary>Stopped while an acquisition was in flight: it may still commit, so release only after its outcome.</summary>
    private void StoppingAfterAcquire()
    {
        Receive<Acquired>(_ => Release());
        Receive<AcquireFailed>(_ => Release());
        Receive<PartitionControl.Stop>(_ => { });
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<IPartitionMessage>(message => Sender.Tell(new Replies.Unavailable($"partition {_partition} is moving", TimeSpan.FromMilliseconds(200))));
    }

    /// <summary>Child stopped on hand-off: give the partition up, then stop.</summary>
    private void Releasing()
    {
        Receive<Released>(_ => Context.Stop(Self));
        Receive<ExpireBuffered>(_ => ExpireOldBuffered());
        Receive<IPartitionMessage>(message => Sender.Tell(new Replies.Unavailable($"partition {_partition} is moving", TimeSpan.FromMilliseconds(200))));
    }

    private void StartChild()
    {
        _log.Info("Partition {0} acquired at epoch {1} (lease generation {2}) {3:0} ms after its supervisor started", _partition, _epoch, _generation, (DateTime.UtcNow - _createdAt).TotalMilliseconds);
        _child = Context.Watch(Context.ActorOf(_childProps(_generation), "p"));
        _childStartedAt = DateTime.UtcNow;
        Become(Running);
        while (_buffer.TryDequeue(out var buffered))
        {
            _child.Tell(buffered.Message, buffered.Sender);
        }
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

        var delay = Backoff();
        _consecutiveFailures++;
        _log.Warning("Partition {0} stopped unexpectedly; restarting it in {1} ms (failure {2} in a row)", _partition, (int)delay.TotalMilliseconds, _consecutiveFailures);
        Become(Acquiring);
        Timers.StartSingleTimer(TryAcquire.Instance, TryAcquire.Instance, delay);
    }

    private void StopWithoutChild()
    {
        // Nothing runs here; if we owned the partition (acquired but child not yet started) release it anyway. An
        // acquisition still in flight would otherwise commit after the release and leave the row held by this live
        // node: its lease keeps being renewed, so the partition's next owner would wait for ever.
        _stopping = true;
        if (_acquireInFlight)
        {
            Become(StoppingAfterAcquire);
            return;
        }

        Release();
    }

    private void Release()
    {
        Become(Releasing);
        ReleaseInBackground().PipeTo(Self);
    }

    // Not released in PostStop (sharding's handoff-timeout stops a supervisor mid-release): a release that outlived
    // this actor could clear the row after a new supervisor on this node took it again under the same lease id.
    // Such a row stays held until this node's lease ends (it leaves or restarts).

    /// <summary>
    /// Releases the partition under every lease id it may be held under (a release only clears a row still held
    /// under that id, so an old id never frees someone else's).
    /// </summary>
    private Task<Released> ReleaseInBackground()
    {
        var nodes = _mayHold.ToList();
        _mayHold.Clear();
        var partition = _partition;
        var store = _store;
        return Task.Run(() =>
        {
            foreach (var node in nodes)
            {
                try
                {
                    store.Release(partition, node);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // The partition becomes free anyway once that lease expires.
                }
            }

            return Released.Instance;
        });
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
