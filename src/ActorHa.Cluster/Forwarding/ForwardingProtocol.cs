using ActorHa.Domain;

namespace ActorHa.Cluster.Forwarding;

/// <summary>Requests for partitions that run on the receiving node, sent together in one remote message.</summary>
public sealed record ForwardBatch(IReadOnlyList<ForwardedRequest> Items);

/// <param name="Id">Chosen by the sending node; comes back with the reply.</param>
public sealed record ForwardedRequest(long Id, IPartitionMessage Message);

/// <summary>The replies to earlier <see cref="ForwardBatch"/>es that were ready together.</summary>
public sealed record ReplyBatch(IReadOnlyList<ForwardedReply> Items);

public sealed record ForwardedReply(long Id, IPartitionReply Reply);

/// <summary>Which partitions run on the sending node right now; every node tells every other one, twice a second.</summary>
public sealed record PartitionsHere(IReadOnlyList<int> Partitions);

/// <summary>
/// The partitions on the sending node that cannot be recovered from the store, and why; sent with
/// <see cref="PartitionsHere"/> while there are any, so that every node's /v1/cluster can show them.
/// </summary>
public sealed record UnrecoverableHere(IReadOnlyList<UnrecoverablePartition> Partitions);

public sealed record UnrecoverablePartition(int Partition, string Reason);
