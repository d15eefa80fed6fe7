using System.Data.Common;
using ActorHa.Domain;

namespace ActorHa.Cluster.Leases;

/// <summary>The outcome of trying to take a partition.</summary>
/// <param name="Acquired">True when this node now owns the partition.</param>
/// <param name="Epoch">The ownership epoch (grows on every change of owner): a fencing token for logs and checks.</param>
/// <param name="Holder">Who holds it when not acquired.</param>
/// <param name="RetryAfter">When not acquired: how long until the holder's node lease expires, if it does not renew.</param>
public sealed record AcquireResult(bool Acquired, long Epoch, string? Holder, TimeSpan RetryAfter);

/// <summary>
/// Node leases and partition ownership, kept in the journal's own database so that the store every write
/// depends on is also the arbiter of who may write. Times are the database's clock: SQLite's is the machine
/// clock all local nodes share; PostgreSQL's is the server's. Nodes never compare their own clocks.
/// </summary>
public interface IOwnershipStore
{
    /// <summary>Where the leases live, for messages: a file, or a database's host, port and name.</summary>
    string Location => "the ownership store";

    /// <summary>Creates the tables when missing.</summary>
    void Initialize();

    /// <summary>
    /// Starts a new node lease (a node id is never reused: it includes the incarnation) or extends a live one.
    /// Returns false when the lease had already expired: it is lost for good, and the node must stop serving.
    /// </summary>
    bool RenewNode(string node, TimeSpan ttl);

    /// <summary>Takes the partition if it is free, released, already ours, or its holder's node lease has expired.</summary>
    AcquireResult TryAcquire(PartitionId partition, string node);

    /// <summary>Gives the partition up (after its actor stopped), so the next owner need not wait for expiry.</summary>
    void Release(PartitionId partition, string node);

    /// <summary>Ends a node lease at once (graceful leave): its partitions can move without waiting for expiry.</summary>
    void ReleaseNode(string node);

    /// <summary>
    /// Takes the split-brain resolver's lease <paramref name="name"/> (see <c>ResolverLease</c>) under the node lease
    /// <paramref name="node"/>, on the same terms as a partition: when it is free, already ours, or its holder's node
    /// lease has expired. So it is held only as long as its holder's node lease lives. Also when it is held by
    /// exactly <paramref name="takeOverFrom"/> (a compare-and-set: the caller saw that holder on its own side).
    /// </summary>
    AcquireResult TryTakeResolverLease(string name, string node, string? takeOverFrom = null);

    /// <summary>Gives the resolver's lease up if <paramref name="node"/> holds it.</summary>
    void ReleaseResolverLease(string name, string node);

    /// <summary>Records which cluster the node under lease <paramref name="node"/> is a member of (see <c>SplitBrainWatchdog</c>).</summary>
    void ReportCluster(string node, string cluster);

    /// <summary>Every live node lease, with the cluster its node last reported (null: none yet).</summary>
    IReadOnlyList<(string Node, string? Cluster)> LiveNodes();
}

/// <summary><see cref="IOwnershipStore.LiveNodes"/> on either store: the same query, with the store's own "now" in milliseconds.</summary>
internal static class LiveNodeRows
{
    public static IReadOnlyList<(string Node, string? Cluster)> Read(DbCommand command, string now)
    {
        command.CommandText = $"SELECT l.node, c.cluster FROM actorha_node_lease l LEFT JOIN actorha_node_cluster c ON c.node = l.node WHERE l.expires_at > {now}";
        using var reader = command.ExecuteReader();
        var live = new List<(string, string?)>();
        while (reader.Read())
        {
            live.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
        }

        return live;
    }
}
