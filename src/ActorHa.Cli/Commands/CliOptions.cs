using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using ActorHa.Client;
using ActorHa.Domain;

namespace ActorHa.Cli.Commands;

/// <summary>
/// Options that check their values while the command line is parsed. A bad value becomes a parse error naming the
/// option and what it wants, which Program.cs prints as one line with exit code 2 before any command starts
/// (System.CommandLine's own conversion error names a .NET type and comes with the whole help text).
/// </summary>
public static class CliOptions
{
    public static Option<int> Int(string name, string description, int min, int max, int defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, CustomParser = r => ParseInt(r, name, min, max) };

    public static Option<int?> OptionalInt(string name, string description, int min, int max) =>
        new(name) { Description = description, CustomParser = r => ParseInt(r, name, min, max) };

    /// <summary>A key's version as the user names it: versions start at 1 (0 would mean "absent", i.e. --create-only).</summary>
    public static Option<long?> Version(string name, string description) =>
        new(name)
        {
            Description = description,
            CustomParser = r =>
            {
                var text = Single(r);
                if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version >= 1)
                {
                    return version;
                }

                r.AddError($"{name} must be a version, a whole number of at least 1 (versions start at 1), not {Quoted(text)}.");
                return null;
            },
        };

    /// <summary>A share between 0 and 1.</summary>
    public static Option<double> Fraction(string name, string description, double defaultValue) =>
        new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                var text = Single(r);
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value is >= 0 and <= 1)
                {
                    return value;
                }

                r.AddError($"{name} must be a number between 0 and 1, not {Quoted(text)}.");
                return defaultValue;
            },
        };

    /// <summary>A duration such as 10s, 500ms or 1.5 (seconds), kept as text so help shows it as typed; <see cref="Durations.Parse"/> reads it.</summary>
    public static Option<string> Duration(string name, string description, string defaultValue, bool allowZero) =>
        new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                var text = Single(r);
                if (Durations.TryParse(text, out var duration) && (allowZero ? duration >= TimeSpan.Zero : duration > TimeSpan.Zero))
                {
                    return text;
                }

                r.AddError($"{name} must be a {(allowZero ? "" : "positive ")}duration such as 10s, 500ms or 1.5{(allowZero ? " (or 0)" : "")}, not {Quoted(text)}.");
                return defaultValue;
            },
        };

    /// <summary>Comma-separated whole numbers, each between min and max.</summary>
    public static Option<string> IntList(string name, string description, int min, int max, string defaultValue) =>
        new(name)
        {
            Description = description,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r =>
            {
                var text = Single(r);
                var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (parts.Length > 0 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max))
                {
                    return text;
                }

                r.AddError($"{name} must be comma-separated whole numbers between {min} and {max}, such as {defaultValue}, not {Quoted(text)}.");
                return defaultValue;
            },
        };

    public static IReadOnlyList<int> ParseIntList(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];

    /// <summary>An Idempotency-Key as the server accepts it (<see cref="IdempotencyKeys"/>): refused here, before anything is sent.</summary>
    public static Option<string?> IdempotencyKey(string name, string description) =>
        new(name)
        {
            Description = description,
            CustomParser = r =>
            {
                var text = Single(r);
                if (IdempotencyKeys.Validate(text) is { } problem)
                {
                    r.AddError($"{name} {problem}");
                    return null;
                }

                return text;
            },
        };

    /// <summary>A value as it may be echoed in a one-line message: quoted, with control characters spelled out.</summary>
    public static string Quoted(string text) =>
        "'" + string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString())) + "'";

    private static int ParseInt(ArgumentResult result, string name, int min, int max)
    {
        var text = Single(result);
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        result.AddError(max == int.MaxValue
            ? $"{name} must be a whole number of at least {min}, not {Quoted(text)}."
            : $"{name} must be a whole number between {min} and {max}, not {Quoted(text)}.");
        return min;
    }

    // Single-value options: System.CommandLine has already refused a second token.
    private static string Single(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
}
