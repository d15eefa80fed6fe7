namespace ActorHa.Domain;

/// <summary>
/// What an Idempotency-Key may be: 1 to 128 printable ASCII characters (space to '~'). HTTP headers carry ASCII
/// only, so a client checks this before it builds a request (and the node applies the same rule): HttpClient would refuse anything else at send time,
/// after connecting, and the refusal would look like a request that got no answer.
/// </summary>
public static class IdempotencyKeys
{
    public const int MaxLength = 128;

    /// <summary>Null for a usable key, else what is wrong, as the end of a sentence ("must not be empty.").</summary>
    public static string? Validate(string key)
    {
        if (key.Length == 0)
        {
            return "must not be empty.";
        }

        if (key.Length > MaxLength)
        {
            return $"must be at most {MaxLength} characters, not {key.Length}.";
        }

        for (var i = 0; i < key.Length; i++)
        {
            if (key[i] is < ' ' or > '~')
            {
                return $"must be printable ASCII (space to '~'); character {i + 1} is U+{(int)key[i]:X4}.";
            }
        }

        return null;
    }

    /// <exception cref="ArgumentException">The key is not usable; nothing has been sent.</exception>
    public static void ThrowIfInvalid(string? key)
    {
        if (key is not null && Validate(key) is { } problem)
        {
            throw new ArgumentException($"The Idempotency-Key {problem}", nameof(key));
        }
    }
}
