using System.Globalization;

namespace ActorHa.Cli.Commands;

/// <summary>Durations on the command line: "60s", "1.5s", "500ms" or plain seconds.</summary>
public static class Durations
{
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var duration) ? duration : throw new FormatException($"'{text}' is not a duration such as 10s, 500ms or 1.5.");

    /// <summary>"10s", "500ms", "1.5" (seconds); false for anything else.</summary>
    public static bool TryParse(string text, out TimeSpan duration)
    {
        var trimmed = text.Trim();
        var (number, seconds) = trimmed.EndsWith("ms", StringComparison.Ordinal) ? (trimmed[..^2], 0.001)
            : trimmed.EndsWith('s') ? (trimmed[..^1], 1.0)
            : (trimmed, 1.0);
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) && value * seconds < TimeSpan.MaxValue.TotalSeconds)
        {
            duration = TimeSpan.FromSeconds(value * seconds);
            return true;
        }

        duration = default;
        return false;
    }
}
