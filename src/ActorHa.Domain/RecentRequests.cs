using System.Collections.Immutable;

namespace ActorHa.Domain;

/// <summary>A remembered request: its reply, and the fingerprint of what it asked for (0 when not known).</summary>
public readonly record struct RememberedRequest(IPartitionReply Reply, ulong Fingerprint);

/// <summary>
/// A bounded, immutable memory of request id → reply, oldest evicted first. It is part of the partition's
/// state (rebuilt from events, kept in snapshots), so a request retried after a failover is still recognised.
/// </summary>
public sealed class RecentRequests
{
    public static readonly RecentRequests Empty = new(ImmutableDictionary<Guid, RememberedRequest>.Empty, ImmutableQueue<(Guid, RememberedRequest)>.Empty);

    private readonly ImmutableDictionary<Guid, RememberedRequest> _requests;
    // Entries ride along in the queue so that walking it in order (snapshots) needs no lookups.
    private readonly ImmutableQueue<(Guid RequestId, RememberedRequest Request)> _order;

    private RecentRequests(ImmutableDictionary<Guid, RememberedRequest> requests, ImmutableQueue<(Guid RequestId, RememberedRequest Request)> order)
    {
        _requests = requests;
        _order = order;
    }

    public int Count => _requests.Count;

    /// <summary>Oldest first.</summary>
    public IEnumerable<(Guid RequestId, IPartitionReply Reply)> InOrder => _order.Select(e => (e.RequestId, e.Request.Reply));

    /// <summary>Oldest first, with fingerprints.</summary>
    public IEnumerable<(Guid RequestId, RememberedRequest Request)> Remembered => _order;

    public static RecentRequests From(IEnumerable<(Guid RequestId, IPartitionReply Reply)> items) =>
        From(items.Select(i => (i.RequestId, new RememberedRequest(i.Reply, 0))));

    public static RecentRequests From(IEnumerable<(Guid RequestId, RememberedRequest Request)> items)
    {
        // Built in place, not by repeated Add: a snapshot brings 10,000 of these, and recovery waits for them
        // (measured 10.9 ms and 12.8 MB per snapshot with Add).
        var requests = ImmutableDictionary.CreateBuilder<Guid, RememberedRequest>();
        var order = new List<(Guid, RememberedRequest)>();
        foreach (var (id, request) in items)
        {
            if (!requests.ContainsKey(id))
            {
                requests.Add(id, request);
                order.Add((id, request));
            }
        }

        return new RecentRequests(requests.ToImmutable(), ImmutableQueue.CreateRange(order));
    }

    public IPartitionReply? Find(Guid requestId) => _requests.TryGetValue(requestId, out var request) ? request.Reply : null;

    public RememberedRequest? Lookup(Guid requestId) => _requests.TryGetValue(requestId, out var request) ? request : null;

    public RecentRequests Add(Guid requestId, IPartitionReply reply, int capacity, ulong fingerprint = 0)
    {
        if (_requests.ContainsKey(requestId))
        {
            return this;
        }

        var remembered = new RememberedRequest(reply, fingerprint);
        var requests = _requests.Add(requestId, remembered);
        var order = _order.Enqueue((requestId, remembered));
        while (requests.Count > capacity)
        {
            order = order.Dequeue(out var oldest);
            requests = requests.Remove(oldest.RequestId);
        }

        return new RecentRequests(requests, order);
    }
}
