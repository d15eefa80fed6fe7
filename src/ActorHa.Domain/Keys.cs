using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;

namespace ActorHa.Domain;

/// <summary>
/// What makes a key acceptable, and how a key is written in a URL. Checked at the edge (client and HTTP) and
/// again in the partition.
/// </summary>
public static class Keys
{
    public const int MaxKeyBytes = 512;

    /// <summary>Returns null for a valid key, else a sentence saying what is wrong.</summary>
    public static string? Validate(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return "The key must not be empty.";
        }

        if (Encoding.UTF8.GetByteCount(key) > MaxKeyBytes)
        {
            return $"The key is longer than {MaxKeyBytes} UTF-8 bytes.";
        }

        foreach (var c in key)
        {
            if (char.IsControl(c))
            {
                return $"The key contains the control character U+{(int)c:X4}.";
            }

            if (char.IsSurrogate(c) && !IsWellFormed(key))
            {
                return "The key is not well-formed Unicode.";
            }
        }

        // HTTP servers and clients (Kestrel, .NET's Uri, browsers, curl) remove "." and ".." path segments, even
        // percent-encoded ones, before anyone sees the key: such a key could never be addressed, and sending it
        // would read or write another key.
        if (HasDotSegment(key))
        {
            return "The key has a '.' or '..' segment between slashes; URLs cannot address such a key.";
        }

        return null;
    }

    /// <summary>
    /// The key as the path after /v1/kv/: every '/'-separated segment percent-escaped as UTF-8 (only RFC 3986
    /// unreserved characters stay as they are), the slashes kept. <see cref="TryUnescape"/> is its inverse.
    /// </summary>
    public static string Escape(string key) => string.Join('/', key.Split('/').Select(Uri.EscapeDataString));

    /// <summary>
    /// Decodes a key written in a URL path: every %XX escape once, as UTF-8 (so %2F is '/', %25 is '%').
    /// Refuses a '%' without two hex digits, characters outside ASCII (a request target has none), and bytes
    /// that are not UTF-8.
    /// </summary>
    public static bool TryUnescape(ReadOnlySpan<char> escaped, [NotNullWhen(true)] out string? key, [NotNullWhen(false)] out string? problem)
    {
        key = null;
        problem = null;
        var bytes = escaped.Length <= 1024 ? stackalloc byte[escaped.Length] : new byte[escaped.Length];
        var length = 0;
        for (var i = 0; i < escaped.Length; i++)
        {
            var c = escaped[i];
            if (c == '%')
            {
                if (i + 2 >= escaped.Length || !char.IsAsciiHexDigit(escaped[i + 1]) || !char.IsAsciiHexDigit(escaped[i + 2]))
                {
                    problem = "The key has a '%' that is not followed by two hex digits; write a literal '%' as %25.";
                    return false;
                }

                bytes[length++] = (byte)((HexValue(escaped[i + 1]) << 4) | HexValue(escaped[i + 2]));
                i += 2;
            }
            else if (char.IsAscii(c))
            {
                bytes[length++] = (byte)c;
            }
            else
            {
                problem = "The key's URL has a character outside ASCII; percent-escape its UTF-8 bytes.";
                return false;
            }
        }

        if (!Utf8.IsValid(bytes[..length]))
        {
            problem = "The key's percent-escapes are not valid UTF-8.";
            return false;
        }

        key = Encoding.UTF8.GetString(bytes[..length]);
        return true;
    }

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>True when a '/'-separated segment of the key is "." or "..": no URL can address such a key.</summary>
    public static bool HasDotSegment(string key)
    {
        foreach (var range in key.AsSpan().Split('/'))
        {
            if (key.AsSpan(range) is "." or "..")
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsWellFormed(string key)
    {
        for (var i = 0; i < key.Length; i++)
        {
            if (char.IsHighSurrogate(key[i]) && i + 1 < key.Length && char.IsLowSurrogate(key[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(key[i]))
            {
                return false;
            }
        }

        return true;
    }
}
