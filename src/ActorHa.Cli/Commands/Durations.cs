using System.Globalization;

namespace ActorHa.Cli.Commands;

/// <summary>Durations on the command line: "60s", "1.5s" or plain seconds.</summary>
public static class Durations
{
    public static TimeSpan Parse(string text)
    {
        var trimmed = text.Trim();
        var seconds = double.Parse(trimmed.EndsWith('s') ? trimmed[..^1] : trimmed, NumberStyles.Float, CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(seconds);
    }
}
