using System.Buffers.Binary;
using System.Text;

namespace ActorHa.Domain;

/// <summary>
/// What a write asked for, as 64 bits (FNV-1a over its kind, key and value), remembered with its request id so
/// that the same id sent with a different request is recognised as a mistake instead of being answered with the
/// first request's outcome. 0 means "not known" (remembered before fingerprints existed, or refused before refusal
/// events kept one).
/// </summary>
public static class RequestFingerprint
{
    private const ulong Offset = 14695981039346656037UL;
    private const ulong Prime = 1099511628211UL;

    public static ulong OfPut(string key, ReadOnlySpan<byte> value) => NonZero(Mix(Mix(Mix(Offset, (byte)'P'), key), value));

    public static ulong OfDelete(string key) => NonZero(Mix(Mix(Offset, (byte)'D'), key));

    private static ulong Mix(ulong hash, byte b) => (hash ^ b) * Prime;

    private static ulong Mix(ulong hash, string key)
    {
        // Computed for every applied write: no allocation for keys of usual length (UTF-8 needs at most 3 bytes a char).
        Span<byte> buffer = stackalloc byte[256];
        var bytes = key.Length * 3 <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(key, buffer)] : Encoding.UTF8.GetBytes(key);
        // The key's length first (little-endian), so that key and value cannot trade bytes and collide.
        Span<byte> length = stackalloc byte[sizeof(int)];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        return Mix(Mix(hash, length), bytes);
    }

    private static ulong Mix(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * Prime;
        }

        return hash;
    }

    private static ulong NonZero(ulong hash) => hash == 0 ? 1 : hash;
}
