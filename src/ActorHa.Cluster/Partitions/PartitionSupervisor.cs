using ActorHa.Domain;
using Akka.Actor;
using Akka.Event;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// The sharding entity for one partition: keeps a <see cref="PartitionActor"/> alive. When the partition
/// throws or its journal fails, the child is stopped and recreated after an exponential backoff; it then
/// recovers from snapshot + events. While no child runs, requests get an immediate, retryable
/// <see cref="Replies.Unavailable"/> rather than waiting out their timeout.
/// </summary>
public sealed class PartitionSupervisor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan HealthyAfter = TimeSpan.FromSeconds(30);

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PartitionId _partition;
    private readonly Props _childProps;
    private IActorRef? _child;
    private int _consecutiveFailures;
    private DateTime _childStartedAt;
    private bool _stopping;

    public PartitionSupervisor(PartitionId partition, Props childProps)
    {
        _partition = partition;
        _childProps = childProps;

        Receive<PartitionControl.Stop>(stop =>
        {
            _stopping = true;
            if (_child is null)
            {
                Context.Stop(Self);
            }
            else
            {
                _child.Tell(stop);
            }
        });
        Receive<Terminated>(t => t.ActorRef.Equals(_child), _ => OnChildTerminated());
        Receive<StartChild>(_ => StartChildNow());
        ReceiveAny(message =>
        {
            if (_child is not null)
            {
                _child.Forward(message);
            }
            else if (message is IPartitionMessage)
            {
                Sender.Tell(new Replies.Unavailable($"partition {_partition} is restarting", RetryAfter()));
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PartitionId partition, Props childProps) =>
        Akka.Actor.Props.Create(() => new PartitionSupervisor(partition, childProps));

    protected override void PreStart() => StartChildNow();

    // Stop, never restart in place: a persistent actor restarted in place would recover concurrently with
    // writes of its previous incarnation still queued in the journal; a fresh child after a backoff does not.
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    private void StartChildNow()
    {
        _child = Context.Watch(Context.ActorOf(_childProps, "p"));
        _childStartedAt = DateTime.UtcNow;
    }

    private void OnChildTerminated()
    {
        _child = null;
        if (_stopping)
        {
            Context.Stop(Self);
            return;
        }

        if (DateTime.UtcNow - _childStartedAt > HealthyAfter)
        {
            _consecutiveFailures = 0;
        }

        var delay = RetryAfter();
        _consecutiveFailures++;
        _log.Warning("Partition {0} stopped unexpectedly; restarting it in {1} ms (failure {2} in a row)", _partition, (int)delay.TotalMilliseconds, _consecutiveFailures);
        Timers.StartSingleTimer(StartChild.Instance, StartChild.Instance, delay);
    }

    private TimeSpan RetryAfter()
    {
        var factor = Math.Pow(2, Math.Min(_consecutiveFailures, 10));
        var ms = Math.Min(MaxBackoff.TotalMilliseconds, MinBackoff.TotalMilliseconds * factor);
        return TimeSpan.FromMilliseconds(ms * (1 + (Random.Shared.NextDouble() * 0.2)));
    }

    private sealed record StartChild
    {
        public static readonly StartChild Instance = new();
    }
}
