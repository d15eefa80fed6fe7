using System.Collections.Immutable;

namespace ActorHa.Domain;

/// <summary>
/// A bounded, immutable memory of request id → reply, oldest evicted first. It is part of the partition's
/// state (rebuilt from events, kept in snapshots), so a request retried after a failover is still recognised.
/// </summary>
public sealed class RecentRequests
{
    public static readonly RecentRequests Empty = new(ImmutableDictionary<Guid, IPartitionReply>.Empty, ImmutableQueue<Guid>.Empty);

    private readonly ImmutableDictionary<Guid, IPartitionReply> _replies;
    private readonly ImmutableQueue<Guid> _order;

    private RecentRequests(ImmutableDictionary<Guid, IPartitionReply> replies, ImmutableQueue<Guid> order)
    {
        _replies = replies;
        _order = order;
    }

    public int Count => _replies.Count;

    /// <summary>Oldest first.</summary>
    public IEnumerable<(Guid RequestId, IPartitionReply Reply)> InOrder => _order.Select(id => (id, _replies[id]));

    public static RecentRequests From(IEnumerable<(Guid RequestId, IPartitionReply Reply)> items)
    {
        var recent = Empty;
        foreach (var (id, reply) in items)
        {
            recent = recent.Add(id, reply, int.MaxValue);
        }

        return recent;
    }

    public IPartitionReply? Find(Guid requestId) => _replies.TryGetValue(requestId, out var reply) ? reply : null;

    public RecentRequests Add(Guid requestId, IPartitionReply reply, int capacity)
    {
        if (_replies.ContainsKey(requestId))
        {
            return this;
        }

        var replies = _replies.Add(requestId, reply);
        var order = _order.Enqueue(requestId);
        while (replies.Count > capacity)
        {
            order = order.Dequeue(out var oldest);
            replies = replies.Remove(oldest);
        }

        return new RecentRequests(replies, order);
    }
}
