using ActorHa.Domain;
using Akka.Actor;

namespace ActorHa.Cluster.Forwarding;

/// <summary>
/// Which other node runs each partition, as those nodes last said (<see cref="PartitionsHere"/>): the
/// <see cref="PartitionClient"/> reads it to forward a request straight to that node's <see cref="PartitionForwarder"/>
/// instead of through the shard regions. A hint, never a guarantee: a request forwarded to a node that no
/// longer runs the partition is answered "unavailable" at once and retried through the shard region, and
/// the partition's lease, not this table, decides whether an answer may be given at all.
/// </summary>
public sealed class RemoteOwners(PartitionMap map)
{
    private readonly Address?[] _owners = new Address?[map.PartitionCount];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Address, string> _peerUrls = new();

    public Address? For(PartitionId partition) => Volatile.Read(ref _owners[partition.Value]);

    /// <summary>Set by this node's <see cref="PartitionForwarder"/> from what the other nodes announce.</summary>
    public void Set(PartitionId partition, Address? owner) => Volatile.Write(ref _owners[partition.Value], owner);

    /// <summary>The HTTP API of the node another node announced the partition on, as this node reaches it; null when unknown.</summary>
    public string? PeerUrlFor(PartitionId partition) => For(partition) is { } owner && _peerUrls.TryGetValue(owner, out var url) ? url : null;

    /// <summary>Set by this node's <see cref="PartitionForwarder"/> from membership (each member's <c>peer-http=</c> role).</summary>
    public void SetPeerUrl(Address member, string? url)
    {
        if (url is null)
        {
            _peerUrls.TryRemove(member, out _);
        }
        else
        {
            _peerUrls[member] = url;
        }
    }
}
