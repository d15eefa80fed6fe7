using ActorHa.Domain;
using Akka.Actor;

namespace ActorHa.Cluster.Partitions;

/// <summary>An unrecoverable partition as one node reports it.</summary>
/// <param name="Node">The reporting node; null: this one.</param>
public sealed record UnrecoverableReport(PartitionId Partition, Address? Node, string Reason);

/// <summary>
/// Partitions that cannot be recovered from the store (<see cref="Replies.Unrecoverable"/>), on this node and, as the
/// other nodes announce them, on theirs: what /v1/cluster shows. Sharding does not move such a partition (its node is
/// healthy, and every node reads the same store), so an operator has to see it. Reports from another node count only
/// while that node keeps repeating them: one that stopped (the partition recovered, moved, or its node left) fades
/// after <see cref="RemoteFreshness"/>.
/// </summary>
public sealed class UnrecoverablePartitions(TimeProvider? clock = null)
{
    /// <summary>Four of the forwarders' announcement intervals: one lost announcement does not make a report fade.</summary>
    public static readonly TimeSpan RemoteFreshness = TimeSpan.FromSeconds(2);

    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private readonly Dictionary<PartitionId, UnrecoverableReport> _local = [];
    private readonly Dictionary<Address, (IReadOnlyList<UnrecoverableReport> Reports, DateTimeOffset At)> _remote = [];

    /// <summary>Set by the partition's supervisor on this node.</summary>
    public void MarkLocal(PartitionId partition, string reason)
    {
        lock (_gate)
        {
            _local[partition] = new UnrecoverableReport(partition, null, reason);
        }
    }

    public void ClearLocal(PartitionId partition)
    {
        lock (_gate)
        {
            _local.Remove(partition);
        }
    }

    /// <summary>This node's unrecoverable partitions, for its announcements.</summary>
    public IReadOnlyList<UnrecoverableReport> Local
    {
        get
        {
            lock (_gate)
            {
                return _local.Count == 0 ? [] : [.. _local.Values];
            }
        }
    }

    /// <summary>What <paramref name="node"/> announced last; replaces its earlier announcement.</summary>
    public void SetRemote(Address node, IReadOnlyList<UnrecoverableReport> reports)
    {
        lock (_gate)
        {
            _remote[node] = (reports, _clock.GetUtcNow());
        }
    }

    public void ForgetRemote(Address node)
    {
        lock (_gate)
        {
            _remote.Remove(node);
        }
    }

    /// <summary>Every current report, this node's and the fresh ones of other nodes.</summary>
    public IReadOnlyList<UnrecoverableReport> All
    {
        get
        {
            var cutoff = _clock.GetUtcNow() - RemoteFreshness;
            lock (_gate)
            {
                return [.. _local.Values, .. _remote.Values.Where(r => r.At >= cutoff).SelectMany(r => r.Reports)];
            }
        }
    }
}
