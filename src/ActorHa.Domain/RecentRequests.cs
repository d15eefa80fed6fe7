using System.Collections.Immutable;

namespace ActorHa.Domain;

/// <summary>
/// A bounded, immutable memory of request id → reply, oldest evicted first. It is part of the partition's
/// state (rebuilt from events, kept in snapshots), so a request retried after a failover is still recognised.
/// </summary>
public sealed class RecentRequests
{
    public static readonly RecentRequests Empty = new(ImmutableDictionary<Guid, IPartitionReply>.Empty, ImmutableQueue<(Guid, IPartitionReply)>.Empty);

    private readonly ImmutableDictionary<Guid, IPartitionReply> _replies;
    // Replies ride along in the queue so that walking it in order (snapshots) needs no lookups.
    private readonly ImmutableQueue<(Guid RequestId, IPartitionReply Reply)> _order;

    private RecentRequests(ImmutableDictionary<Guid, IPartitionReply> replies, ImmutableQueue<(Guid RequestId, IPartitionReply Reply)> order)
    {
        _replies = replies;
        _order = order;
    }

    public int Count => _replies.Count;

    /// <summary>Oldest first.</summary>
    public IEnumerable<(Guid RequestId, IPartitionReply Reply)> InOrder => _order;

    public static RecentRequests From(IEnumerable<(Guid RequestId, IPartitionReply Reply)> items)
    {
        // Built in place, not by repeated Add: a snapshot brings 10,000 of these, and recovery waits for them
        // (measured 10.9 ms and 12.8 MB per snapshot with Add).
        var replies = ImmutableDictionary.CreateBuilder<Guid, IPartitionReply>();
        var order = new List<(Guid, IPartitionReply)>();
        foreach (var (id, reply) in items)
        {
            if (!replies.ContainsKey(id))
            {
                replies.Add(id, reply);
                order.Add((id, reply));
            }
        }

        return new RecentRequests(replies.ToImmutable(), ImmutableQueue.CreateRange(order));
    }

    public IPartitionReply? Find(Guid requestId) => _replies.TryGetValue(requestId, out var reply) ? reply : null;

    public RecentRequests Add(Guid requestId, IPartitionReply reply, int capacity)
    {
        if (_replies.ContainsKey(requestId))
        {
            return this;
        }

        var replies = _replies.Add(requestId, reply);
        var order = _order.Enqueue((requestId, reply));
        while (replies.Count > capacity)
        {
            order = order.Dequeue(out var oldest);
            replies = replies.Remove(oldest.RequestId);
        }

        return new RecentRequests(replies, order);
    }
}
