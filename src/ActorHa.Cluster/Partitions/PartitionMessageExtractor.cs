using ActorHa.Domain;
using Akka.Cluster.Sharding;

namespace ActorHa.Cluster.Partitions;

/// <summary>
/// One shard per partition and one entity per shard, so sharding's unit of placement and hand-off is
/// exactly a partition. Keys route by <see cref="PartitionMap"/>; partition-wide queries and
/// <see cref="ShardRegion.StartEntity"/> carry their partition.
/// </summary>
public sealed class PartitionMessageExtractor(PartitionMap map) : IMessageExtractor
{
    public string EntityId(object message) => message switch
    {
        IKeyed keyed => map.For(keyed.Key).ToString(),
        Queries.ListKeys list => list.Partition.ToString(),
        PartitionControl.InjectFailureFor fault => fault.Partition.ToString(),
        _ => null!,
    };

    public object EntityMessage(object message) => message switch
    {
        PartitionControl.InjectFailureFor fault => new PartitionControl.InjectFailure(fault.Reason),
        _ => message,
    };

    public string ShardId(object message) => EntityId(message);

    public string ShardId(string entityId, object? messageHint = null) => entityId;
}
