using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace ActorHa.Cluster.Forwarding;

/// <summary>Registry key of this node's <see cref="PartitionForwarder"/>.</summary>
public sealed class PartitionForwarderKey;

/// <summary>
/// Carries requests for partitions that run on other nodes, and their replies: every node runs one, at
/// <see cref="Name"/>. Through the shard region, a request that lands on a node that does not own its key
/// passes the local region, then the owner's region, shard and supervisor, and each request has a temporary
/// reply actor whose unique path both nodes must resolve. Here the two forwarders are the only remote
/// sender and recipient: the receiving one hands the request straight to the partition registered as running
/// on its node and sends the reply back tagged with the request's id. Requests (and replies) that are queued
/// together go out together (<see cref="ForwardBatch"/>, <see cref="ReplyBatch"/>), with no timer: measured at
/// c=64 on three nodes, most batches hold one item, so the gain is the shorter path, not the batching.
/// Nothing here decides ownership: a request is only handed to a partition registered as running on the
/// receiving node, the partition checks its own lease before it answers, and anything else (the partition
/// moved, the node left, no reply in time) is answered "unavailable" so the caller retries through the region
/// with the same request id.
/// </summary>
public sealed class PartitionForwarder : ReceiveActor, IWithTimers
{
    public const string Name = "forwarder";
    private static readonly TimeSpan AnnounceInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ExpireInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// A batch goes out before it would outgrow this many (estimated) bytes. Akka.Remote drops a message larger than
    /// its maximum frame size, logs it, and tells nobody: the callers would wait for their timeout and be told
    /// "outcome unknown", again on every retry. hocon/actorha.conf sets the frame size to 4 MiB, room for a full
    /// batch plus the largest single item (a 1 MiB value, or a page of 1,000 keys of 512 bytes).
    /// </summary>
    internal const int MaxBatchBytes = 2 * 1024 * 1024;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly PartitionMap _map;
    private readonly LocalPartitions _local;
    private readonly RemoteOwners _owners;
    private readonly TimeSpan _replyTimeout;
    private readonly UnrecoverablePartitions? _unrecoverable;
    private readonly LargeValueReplies? _large;
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);

    private readonly Dictionary<long, (TaskCompletionSource<IPartitionReply> Reply, Address Peer, DateTime SentAt)> _pending = [];
    private readonly Dictionary<Address, Outbox<ForwardedRequest>> _outgoing = [];
    private readonly Dictionary<IActorRef, Outbox<ForwardedReply>> _replies = [];
    private readonly Dictionary<Address, IActorRef> _peers = [];
    private readonly Dictionary<Address, HashSet<int>> _claims = [];
    private readonly HashSet<Address> _unreachable = [];
    // Ids start at a random point, not 0: a restarted forwarder (same address, same actor path) must not match a
    // late reply to its previous incarnation's request with one of its own.
    private long _nextId = Random.Shared.NextInt64(long.MaxValue / 2);
    private bool _flushScheduled;

    public PartitionForwarder(PartitionMap map, LocalPartitions local, RemoteOwners owners, TimeSpan replyTimeout, UnrecoverablePartitions? unrecoverable = null, LargeValueReplies? large = null)
    {
        _large = large;
        _unrecoverable = unrecoverable;
        _map = map;
        _local = local;
        _owners = owners;
        _replyTimeout = replyTimeout;

        Receive<Forward>(OnForward);
        Receive<ForwardBatch>(OnForwardBatch);
        // Every reply here goes to another node: a large value goes as a pointer to this node's HTTP API.
        Receive<LocalReply>(reply => Enqueue(reply.Origin, new ForwardedReply(reply.Id, _large?.ForRemote(reply.Reply) ?? reply.Reply)));
        Receive<ReplyBatch>(OnReplyBatch);
        Receive<Flush>(_ => OnFlush());
        Receive<PartitionsHere>(here =>
        {
            _claims[Sender.Path.Address] = [.. here.Partitions];
            UpdateOwners();
        });
        Receive<UnrecoverableHere>(here => _unrecoverable?.SetRemote(
            Sender.Path.Address,
            here.Partitions.Where(p => p.Partition >= 0 && p.Partition < _map.PartitionCount).Select(p => new UnrecoverableReport(new PartitionId(p.Partition), Sender.Path.Address, p.Reason)).ToList()));
        Receive<Tick>(_ => Announce());
        Receive<Expire>(_ => ExpirePending());
        Receive<ClusterEvent.UnreachableMember>(e =>
        {
            _unreachable.Add(e.Member.Address);
            UpdateOwners();
        });
        Receive<ClusterEvent.ReachableMember>(e =>
        {
            _unreachable.Remove(e.Member.Address);
            UpdateOwners();
        });
        Receive<ClusterEvent.MemberUp>(e => _owners.SetPeerUrl(e.Member.Address, Membership.HttpAddresses.PeerOf(e.Member)));
        Receive<ClusterEvent.MemberWeaklyUp>(e => _owners.SetPeerUrl(e.Member.Address, Membership.HttpAddresses.PeerOf(e.Member)));
        Receive<ClusterEvent.MemberRemoved>(e =>
        {
            _owners.SetPeerUrl(e.Member.Address, null);
            _claims.Remove(e.Member.Address);
            _peers.Remove(e.Member.Address);
            _unrecoverable?.ForgetRemote(e.Member.Address);
            _unreachable.Remove(e.Member.Address);
            UpdateOwners();
            // Whatever went to that member gets no answer: let the callers retry elsewhere now.
            FailPending((peer, _) => peer.Equals(e.Member.Address), $"node {e.Member.Address} left the cluster");
        });
        Receive<ClusterEvent.IMemberEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PartitionMap map, LocalPartitions local, RemoteOwners owners, TimeSpan replyTimeout, UnrecoverablePartitions? unrecoverable = null, LargeValueReplies? large = null) =>
        Akka.Actor.Props.Create(() => new PartitionForwarder(map, local, owners, replyTimeout, unrecoverable, large));

    protected override void PreStart()
    {
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));
        Timers.StartPeriodicTimer(Tick.Instance, Tick.Instance, AnnounceInterval);
        Timers.StartPeriodicTimer(Expire.Instance, Expire.Instance, ExpireInterval);
    }

    protected override void PostStop()
    {
        _cluster.Unsubscribe(Self);
        FailPending((_, _) => true, "the forwarder stopped");
    }

    private void OnForward(Forward forward)
    {
        var id = ++_nextId;
        _pending[id] = (forward.Reply, forward.Peer, DateTime.UtcNow);
        if (!_outgoing.TryGetValue(forward.Peer, out var outbox))
        {
            _outgoing[forward.Peer] = outbox = new Outbox<ForwardedRequest>();
        }

        if (outbox.Add(new ForwardedRequest(id, forward.Message), ApproximateSize(forward.Message)) is { } full)
        {
            PeerAt(forward.Peer).Tell(new ForwardBatch(full));
        }

        ScheduleFlush();
    }

    private void OnForwardBatch(ForwardBatch batch)
    {
        var origin = Sender;
        foreach (var (id, message) in batch.Items)
        {
            PartitionId? partition = message switch
            {
                IKeyed keyed => _map.For(keyed.Key),
                Queries.ListKeys list => list.Partition,
                _ => null,
            };
            if (partition is { } p && p.Value >= 0 && p.Value < _map.PartitionCount && _local.For(p) is { } target)
            {
                target.Tell(message, new ReplyTo(Self, origin, id));
            }
            else
            {
                // Not here (moved, or not started yet): not handed to anyone, so the caller may retry at once.
                Enqueue(origin, new ForwardedReply(id, new Replies.Unavailable($"partition {partition} does not run on {_cluster.SelfAddress}", TimeSpan.Zero)));
            }
        }
    }

    private void OnReplyBatch(ReplyBatch batch)
    {
        var from = Sender.Path.Address;
        foreach (var (id, reply) in batch.Items)
        {
            // Only the node a request went to may answer it.
            if (_pending.TryGetValue(id, out var pending) && pending.Peer.Equals(from))
            {
                _pending.Remove(id);
                pending.Reply.TrySetResult(reply);
            }
        }
    }

    private void Enqueue(IActorRef origin, ForwardedReply reply)
    {
        if (!_replies.TryGetValue(origin, out var outbox))
        {
            _replies[origin] = outbox = new Outbox<ForwardedReply>();
        }

        if (outbox.Add(reply, ApproximateSize(reply.Reply)) is { } full)
        {
            origin.Tell(new ReplyBatch(full));
        }

        ScheduleFlush();
    }

    // Sends once every message already in the mailbox has been taken in: whatever arrived meanwhile goes in
    // the same batch, and nothing waits for a timer.
    private void ScheduleFlush()
    {
        if (!_flushScheduled)
        {
            _flushScheduled = true;
            Self.Tell(Flush.Instance);
        }
    }

    private void OnFlush()
    {
        _flushScheduled = false;
        foreach (var (peer, outbox) in _outgoing)
        {
            if (outbox.TakeAll() is { } items)
            {
                PeerAt(peer).Tell(new ForwardBatch(items));
            }
        }

        foreach (var (origin, outbox) in _replies)
        {
            if (outbox.TakeAll() is { } items)
            {
                origin.Tell(new ReplyBatch(items));
            }
        }
    }

    private IActorRef PeerAt(Address address)
    {
        if (!_peers.TryGetValue(address, out var peer))
        {
            var path = new RootActorPath(address) / "user" / Name;
            _peers[address] = peer = ((ExtendedActorSystem)Context.System).Provider.ResolveActorRef(path);
        }

        return peer;
    }

    private void Announce()
    {
        var here = new PartitionsHere(_map.All.Where(p => _local.For(p) is not null).Select(p => p.Value).ToList());
        // Only while there are any: a node that stops repeating them has none (UnrecoverablePartitions lets them fade).
        var unrecoverable = _unrecoverable?.Local is { Count: > 0 } reports
            ? new UnrecoverableHere(reports.Select(r => new UnrecoverablePartition(r.Partition.Value, r.Reason)).ToList())
            : null;
        foreach (var member in _cluster.State.Members)
        {
            if (member.Status == MemberStatus.Up && !member.Address.Equals(_cluster.SelfAddress))
            {
                PeerAt(member.Address).Tell(here);
                if (unrecoverable is not null)
                {
                    PeerAt(member.Address).Tell(unrecoverable);
                }
            }
        }
    }

    private void UpdateOwners()
    {
        for (var p = 0; p < _map.PartitionCount; p++)
        {
            Address? owner = null;
            var claimants = 0;
            foreach (var (address, partitions) in _claims)
            {
                if (!_unreachable.Contains(address) && partitions.Contains(p))
                {
                    owner = address;
                    claimants++;
                }
            }

            // Two claimants: a partition mid-move. Neither is used until the old owner stops claiming it.
            _owners.Set(new PartitionId(p), claimants == 1 ? owner : null);
        }
    }

    private void ExpirePending()
    {
        var cutoff = DateTime.UtcNow - _replyTimeout;
        FailPending((_, sentAt) => sentAt < cutoff, "no answer from the node the request was forwarded to");
    }

    private void FailPending(Func<Address, DateTime, bool> which, string reason)
    {
        List<long>? failed = null;
        foreach (var (id, (reply, peer, sentAt)) in _pending)
        {
            if (which(peer, sentAt))
            {
                // The request may have been applied: the caller's retry carries the same request id.
                reply.TrySetResult(new Replies.Unavailable(reason, TimeSpan.Zero));
                (failed ??= []).Add(id);
            }
        }

        foreach (var id in failed ?? [])
        {
            _pending.Remove(id);
        }

        if (failed is { Count: > 0 })
        {
            _log.Debug("Forwarder: {0} forwarded requests failed: {1}", failed.Count, reason);
        }
    }

    /// <summary>An upper estimate of a message's serialized size: UTF-8 keys, raw values, a fixed allowance for the rest.</summary>
    internal static int ApproximateSize(object message) => message switch
    {
        Commands.Put put => 64 + (put.Key.Length * 3) + put.Value.Length,
        Replies.Found found => 96 + (found.Key.Length * 3) + found.Value.Length,
        Replies.KeyPage page => 64 + page.Keys.Sum(k => 16 + (k.Key.Length * 3)),
        Queries.ListKeys list => 64 + ((list.Prefix.Length + (list.After?.Length ?? 0)) * 3),
        IKeyed keyed => 64 + (keyed.Key.Length * 3),
        Replies.Written r => 64 + (r.Key.Length * 3),
        Replies.Deleted r => 64 + (r.Key.Length * 3),
        Replies.NotFound r => 64 + (r.Key.Length * 3),
        Replies.VersionMismatch r => 64 + (r.Key.Length * 3),
        Replies.InvalidKey r => 64 + ((r.Key.Length + r.Reason.Length) * 3),
        Replies.IdempotencyConflict r => 64 + ((r.Key.Length + r.Reason.Length) * 3),
        Replies.Unavailable r => 64 + (r.Reason.Length * 3),
        Replies.Unrecoverable r => 64 + (r.Reason.Length * 3),
        Replies.FetchFromOwner r => 64 + ((r.Key.Length + r.OwnerUrl.Length) * 3),
        Replies.Located r => 64 + ((r.Key.Length + (r.OwnerUrl?.Length ?? 0)) * 3),
        _ => 256,
    };

    /// <summary>What is queued for one destination, and its estimated size.</summary>
    internal sealed class Outbox<T>
    {
        private List<T> _items = [];
        private int _bytes;

        /// <summary>Queues the item; returns the batch queued before it when the item would have made that too large.</summary>
        public List<T>? Add(T item, int bytes)
        {
            List<T>? full = null;
            if (_items.Count > 0 && _bytes + bytes > MaxBatchBytes)
            {
                full = TakeAll();
            }

            _items.Add(item);
            _bytes += bytes;
            return full;
        }

        public List<T>? TakeAll()
        {
            if (_items.Count == 0)
            {
                return null;
            }

            var items = _items;
            _items = [];
            _bytes = 0;
            return items;
        }
    }

    /// <summary>From <see cref="PartitionClient"/> on this node: send <paramref name="Message"/> to the forwarder on <paramref name="Peer"/>.</summary>
    public sealed record Forward(Address Peer, IPartitionMessage Message, TaskCompletionSource<IPartitionReply> Reply);

    private sealed record LocalReply(IActorRef Origin, long Id, IPartitionReply Reply);

    private sealed record Flush
    {
        public static readonly Flush Instance = new();
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record Expire
    {
        public static readonly Expire Instance = new();
    }

    /// <summary>
    /// The sender a forwarded request carries to its partition: whatever the partition (or its supervisor) answers
    /// goes back to the forwarder tagged with the request's id. Only ever used on this node, so it needs no path
    /// of its own.
    /// </summary>
    private sealed class ReplyTo(IActorRef forwarder, IActorRef origin, long id) : MinimalActorRef
    {
        public override ActorPath Path => forwarder.Path / "reply";

        public override IActorRefProvider Provider => ((IInternalActorRef)forwarder).Provider;

        protected override void TellInternal(object message, IActorRef sender)
        {
            if (message is IPartitionReply reply)
            {
                forwarder.Tell(new LocalReply(origin, id, reply));
            }
        }
    }
}
