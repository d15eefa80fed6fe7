using System.Text;

namespace ActorHa.Domain;

/// <summary>
/// What a write asked for, as 64 bits (FNV-1a over its kind, key and value), remembered with its request id so
/// that the same id sent with a different request is recognised as a mistake instead of being answered with the
/// first request's outcome. 0 means "not known" (remembered before fingerprints existed, or a refusal, whose
/// event does not carry the value).
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
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(key) <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(key, buffer)] : Encoding.UTF8.GetBytes(key);
        // The key's length first, so that key and value cannot trade bytes and collide.
        hash = Mix(hash, BitConverter.GetBytes(bytes.Length));
        return Mix(hash, bytes);
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
