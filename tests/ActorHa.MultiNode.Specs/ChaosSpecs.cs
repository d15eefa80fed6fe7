using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>A short `actorha chaos` run, as users run it: real processes killed, frozen and cut off, history checked.</summary>
public sealed partial class ChaosSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_chaos_run_with_kills_pauses_and_network_partitions_finds_no_violation_and_loses_no_acknowledged_write()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-chaos-spec", Guid.NewGuid().ToString("N"));
        var run = await CliProcess.RunAsync(TimeSpan.FromMinutes(5), "chaos", "--duration", "40s", "--faults", "kill,pause,partition", "--seed", "7", "--data-dir", dataDir);
        var text = run.Stdout;
        output.WriteLine(text);
        output.WriteLine(run.Stderr);

        Assert.True(run.Exited, "the chaos run did not finish within 5 minutes");
        Assert.Equal(0, run.Exit);
        Assert.Equal("0", Violations().Match(text).Groups[1].Value);
        Assert.True(int.Parse(Faults().Match(text).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 6, "fewer than 6 faults injected");
        Assert.True(int.Parse(Ok().Match(text).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 500, "too few acknowledged operations to mean anything");
        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in /tmp are harmless.
        }
    }

    [GeneratedRegex(@"^violations (\d+)", RegexOptions.Multiline)]
    private static partial Regex Violations();

    [GeneratedRegex(@"^faults injected (\d+)", RegexOptions.Multiline)]
    private static partial Regex Faults();

    [GeneratedRegex(@"ok (\d+), failed", RegexOptions.Multiline)]
    private static partial Regex Ok();
}
