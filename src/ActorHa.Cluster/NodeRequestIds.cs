using System.Buffers.Binary;
using System.Security.Cryptography;

namespace ActorHa.Cluster;

/// <summary>
/// The request ids a node gives the writes that arrive without an Idempotency-Key: eight random bytes drawn once per
/// process, then a counter. Unique as a random GUID is (a prefix of its own per process, a counter that never repeats
/// within it), and each partition remembers the ids of its last 10,000 writes in every snapshot: ids that share a
/// prefix and differ by a small step take ~3 bytes there instead of 16 (<c>KvSerializer</c>, snapshot v5), which
/// halves the snapshots a partition saves every 1,000 writes.
/// <para>
/// Not a secret and not needed to be one: a client that sent one of these ids as its own Idempotency-Key for another
/// request would be refused (422), since a remembered id is matched with its request's fingerprint.
/// </para>
/// </summary>
public static class NodeRequestIds
{
    private static readonly ulong Prefix = BinaryPrimitives.ReadUInt64LittleEndian(RandomNumberGenerator.GetBytes(8));
    private static long _counter;

    public static Guid Next() => Make(Prefix, (ulong)Interlocked.Increment(ref _counter));

    /// <summary>The id whose 16 bytes are the prefix, then the counter, each little-endian (the halves the snapshot encoding compares).</summary>
    public static Guid Make(ulong prefix, ulong counter)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, prefix);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], counter);
        return new Guid(bytes);
    }
}
