using System.Globalization;

namespace ActorHa.Domain;

/// <summary>One of the fixed data partitions; also the sharding entity and shard id.</summary>
public readonly record struct PartitionId(int Value)
{
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);

    public static PartitionId Parse(string text) => new(int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture));
}
