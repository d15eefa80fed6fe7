using ActorHa.Cluster.Fencing;
using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;

namespace ActorHa.Cluster.Membership;

/// <param name="IsOldest">The oldest Up member hosts the cluster singletons, the sharding coordinator among them.</param>
/// <param name="HttpUrl">Where clients reach this member's HTTP API (its advertised URL).</param>
public sealed record MemberView(string Address, string? HttpUrl, string Status, bool Reachable, IReadOnlyList<string> Roles, DateTimeOffset? UpSince, bool IsOldest, bool IsSelf, bool IsLeader);

/// <param name="OwnerHttpUrl">The owner's HTTP API: a client that sends the partition's keys there saves the hop between nodes.</param>
/// <param name="State">running, unrecoverable (its node cannot rebuild it from the store: see Problem), unassigned or unknown.</param>
/// <param name="Problem">Why an unrecoverable partition cannot be recovered, as its node reports it; null otherwise.</param>
public sealed record PartitionView(int Partition, string? Owner, string? OwnerHttpUrl, string State, string? Problem = null);

public sealed record ClusterSnapshot(string Self, string? Leader, IReadOnlyList<MemberView> Members, IReadOnlyList<PartitionView> Partitions);

/// <summary>A read model of the cluster for the API: membership from Akka.Cluster, partition owners from sharding.</summary>
public sealed class ClusterView(ActorSystem system, IRequiredActor<PartitionRegion> region, PartitionMap map, UpSinceLog upSince, PersistenceWarmup warmup, NodeExit exit, NodeLease lease, UnrecoverablePartitions unrecoverable)
{
    private static readonly TimeSpan StatsTimeout = TimeSpan.FromSeconds(3);

    private Akka.Cluster.Cluster Cluster => Akka.Cluster.Cluster.Get(system);

    public bool SelfIsUp => Cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up;

    public async Task<ClusterSnapshot> GetAsync(CancellationToken cancellationToken = default)
    {
        var state = Cluster.State;
        var unreachable = state.Unreachable.Select(m => m.UniqueAddress).ToHashSet();
        var oldest = state.Members
            .Where(m => m.Status == Akka.Cluster.MemberStatus.Up && m.HasRole(PartitionsSetup.Role))
            .Aggregate((Akka.Cluster.Member?)null, (a, b) => a is null || b.IsOlderThan(a) ? b : a);
        var members = state.Members
            .Select(m => new MemberView(
                m.Address.ToString(),
                HttpAddresses.Of(m),
                m.Status.ToString(),
                !unreachable.Contains(m.UniqueAddress),
                m.Roles.Where(r => !HttpAddresses.IsHttpRole(r) && !HttpAddresses.IsPeerRole(r) && !ProcessIdentity.IsProcessRole(r)).OrderBy(r => r, StringComparer.Ordinal).ToList(),
                upSince.For(m.UniqueAddress),
                m.Equals(oldest),
                m.UniqueAddress.Equals(Cluster.SelfUniqueAddress),
                m.Address.Equals(state.Leader)))
            .ToList();

        var owners = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var stats = await region.ActorRef.Ask<ClusterShardingStats>(new GetClusterShardingStats(StatsTimeout), StatsTimeout + TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            foreach (var (address, regionStats) in stats.Regions)
            {
                foreach (var shard in regionStats.Stats.Keys)
                {
                    owners[shard] = address.ToString();
                }
            }
        }
        catch (AskTimeoutException)
        {
            // Owners unknown: every partition reports "unknown" rather than failing the whole view.
        }

        var httpOf = members.ToDictionary(m => m.Address, m => m.HttpUrl, StringComparer.Ordinal);
        // Reported by the node that holds the partition; a report from a node that no longer owns it (moved meanwhile) is
        // not shown against the new owner.
        var problems = unrecoverable.All
            .GroupBy(r => r.Partition)
            .ToDictionary(g => g.Key, g => g.ToList());
        var partitions = map.All
            .Select(p => owners.TryGetValue(p.ToString(), out var owner)
                ? problems.GetValueOrDefault(p)?.FirstOrDefault(r => (r.Node ?? Cluster.SelfAddress).ToString() == owner) is { } problem
                    ? new PartitionView(p.Value, owner, httpOf.GetValueOrDefault(owner), "unrecoverable", problem.Reason)
                    : new PartitionView(p.Value, owner, httpOf.GetValueOrDefault(owner), "running")
                : new PartitionView(p.Value, null, null, owners.Count == 0 ? "unknown" : "unassigned"))
            .ToList();

        return new ClusterSnapshot(Cluster.SelfAddress.ToString(), state.Leader?.ToString(), members, partitions);
    }

    /// <summary>
    /// Ready = this member is Up, its lease in the store is current, and the coordinator knows our shard region (it can
    /// host and route partitions). Without a current lease every partition here answers 503 (the store is unreachable or
    /// too slow to confirm a renewal), so a load balancer should send requests elsewhere.
    /// </summary>
    public async Task<(bool Ready, string Reason)> ReadinessAsync(CancellationToken cancellationToken = default)
    {
        if (exit.ShuttingDown)
        {
            return (false, "shutting down");
        }

        if (!SelfIsUp)
        {
            return (false, $"member status is {Cluster.SelfMember.Status}");
        }

        if (!lease.IsValid)
        {
            return (false, "this node's lease in the store is not current (store unreachable or slow?); its partitions answer 503 until a renewal succeeds");
        }

        if (!warmup.IsDone)
        {
            return (false, "journal and snapshot store still warming up");
        }

        try
        {
            var regions = await region.ActorRef.Ask<CurrentRegions>(GetCurrentRegions.Instance, TimeSpan.FromSeconds(2), cancellationToken).ConfigureAwait(false);
            return regions.Regions.Contains(Cluster.SelfAddress)
                ? (true, "up")
                : (false, "shard region not registered with the coordinator yet");
        }
        catch (AskTimeoutException)
        {
            return (false, "shard coordinator did not answer");
        }
    }
}
