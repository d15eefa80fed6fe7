using System.Text;

namespace ActorHa.Domain;

/// <summary>What makes a key acceptable. Checked at the edge (HTTP) and again in the partition.</summary>
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

        return null;
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
