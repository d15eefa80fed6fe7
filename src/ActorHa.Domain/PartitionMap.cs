using System.Text;

namespace ActorHa.Domain;

/// <summary>
/// Maps keys to partitions: FNV-1a 64-bit over the key's UTF-8 bytes, modulo the partition count.
/// The hash is part of the on-disk contract (a key's events live in its partition's journal), so it
/// must never depend on the process, the runtime or the machine: no string.GetHashCode here.
/// </summary>
public sealed class PartitionMap
{
    public const int DefaultPartitionCount = 32;
    public const int MaxPartitionCount = 4096;

    private const ulong FnvOffsetBasis = 14695981039346656037UL;
    private const ulong FnvPrime = 1099511628211UL;

    public PartitionMap(int partitionCount)
    {
        if (partitionCount is < 1 or > MaxPartitionCount)
        {
            throw new ArgumentOutOfRangeException(nameof(partitionCount), partitionCount,
                $"The partition count must be between 1 and {MaxPartitionCount}.");
        }

        PartitionCount = partitionCount;
    }

    public int PartitionCount { get; }

    public IEnumerable<PartitionId> All => Enumerable.Range(0, PartitionCount).Select(i => new PartitionId(i));

    public PartitionId For(string key) => new((int)(Fnv1a64(key) % (ulong)PartitionCount));

    public static ulong Fnv1a64(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> buffer = key.Length <= 256 ? stackalloc byte[Encoding.UTF8.GetMaxByteCount(key.Length)] : new byte[Encoding.UTF8.GetByteCount(key)];
        var length = Encoding.UTF8.GetBytes(key, buffer);
        var hash = FnvOffsetBasis;
        foreach (var b in buffer[..length])
        {
            hash ^= b;
            hash *= FnvPrime;
        }

        return hash;
    }
}
