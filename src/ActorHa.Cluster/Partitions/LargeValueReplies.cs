using ActorHa.Domain;
using Akka.Actor;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// Keeps large values out of Akka remoting on the read side (OwnerRelay, in the API, sends large writes over HTTP).
/// A read's reply to another node travels over the one remoting connection between the two nodes, behind
/// whatever is queued on it and in front of the failure detector's heartbeats. Measured on three nodes: 200
/// clients reading 1 MiB values through nodes that did not own them queued enough that healthy members missed
/// their heartbeats, and every node was downed and restarted in turn within 30 s. A value larger than
/// <see cref="LimitBytes"/> (<see cref="ActorHaSettings.RemoteValueLimitBytes"/>) therefore goes to another node
/// as <see cref="Replies.FetchFromOwner"/>, and the node that asked fetches it from this node's HTTP API, on a
/// connection of its own. Replies to this node's own callers are never changed.
/// </summary>
/// <param name="ownerUrl">This node's HTTP API as the other nodes reach it (<see cref="ActorHaSettings.PeerHttpUrl"/>); null: never redirect.</param>
/// <param name="limitBytes">The largest value that still goes as it is.</param>
public sealed class LargeValueReplies(string? ownerUrl, int limitBytes)
{
    public int LimitBytes { get; } = limitBytes;

    /// <summary>Where another node sends a large value for a partition on this node (<see cref="Queries.Locate"/>).</summary>
    public Replies.Located Locate(Queries.Locate locate) => new(locate.Key, ownerUrl);

    /// <summary>The reply as it may go to another node.</summary>
    public IPartitionReply ForRemote(IPartitionReply reply) =>
        ownerUrl is not null && reply is Replies.Found found && found.Value.Length > LimitBytes
            ? new Replies.FetchFromOwner(found.Key, found.Version, found.Value.Length, ownerUrl)
            : reply;

    /// <summary>The reply for <paramref name="recipient"/>: changed only if it lives on another node.</summary>
    public IPartitionReply For(IActorRef recipient, IPartitionReply reply) =>
        recipient.Path.Address.HasGlobalScope ? ForRemote(reply) : reply;
}
