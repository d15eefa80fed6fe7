using ActorHa.Cluster.Leases;
using ActorHa.Domain;

namespace ActorHa.Cluster.Specs.Membership;

/// <summary>
/// A store for the membership actors that only read the live node leases (and report their cluster): a spec says what
/// <see cref="LiveNodes"/> answers; renewals succeed; partitions and the resolver's lease are not theirs to touch.
/// </summary>
internal abstract class LiveNodesStore : IOwnershipStore
{
    public abstract IReadOnlyList<(string Node, string? Cluster)> LiveNodes();

    public virtual void ReportCluster(string node, string cluster)
    {
    }

    public void Initialize()
    {
    }

    public bool RenewNode(string node, TimeSpan ttl) => true;

    public void ReleaseNode(string node)
    {
    }

    public AcquireResult TryAcquire(PartitionId partition, string node) => throw new NotSupportedException();

    public void Release(PartitionId partition, string node) => throw new NotSupportedException();

    public AcquireResult TryTakeResolverLease(string name, string node, string? takeOverFrom = null) => throw new NotSupportedException();

    public void ReleaseResolverLease(string name, string node) => throw new NotSupportedException();
}
