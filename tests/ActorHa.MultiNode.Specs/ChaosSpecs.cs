using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>A short `actorha chaos` run, as users run it: real processes killed, frozen and cut off, history checked.</summary>
public sealed partial class ChaosSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task A_short_chaos_run_with_kills_pauses_and_network_partitions_finds_no_violation_and_loses_no_acknowledged_write()
    {
        var text = await RunChaosWithoutViolationsAsync(TimeSpan.FromMinutes(5), "--duration", "40s", "--seed", "7");

        Assert.True(int.Parse(Faults().Match(text).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 6, "fewer than 6 faults injected");
        Assert.True(int.Parse(Ok().Match(text).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 500, "too few acknowledged operations to mean anything");
        // What the clients felt: the longest stretch with nothing acknowledged lies within the run (40 s of faults, and
        // a write in flight at the end may retry for 10 s more, each attempt up to the 5 s request timeout).
        var stretch = Stretch().Match(text);
        Assert.True(stretch.Success, "no line with the longest stretch without an acknowledged operation");
        var (length, from, to) = (Seconds(stretch.Groups[1]), Seconds(stretch.Groups[2]), Seconds(stretch.Groups[3]));
        Assert.True(length > 0 && from >= 0 && to <= 60 && Math.Abs(to - from - length) < 0.2, stretch.Value);
    }

    [Fact]
    public async Task A_chaos_run_with_settle_injects_each_fault_only_into_a_recovered_cluster_and_finds_no_violation()
    {
        var text = await RunChaosWithoutViolationsAsync(TimeSpan.FromMinutes(4), "--duration", "25s", "--seed", "202", "--settle");

        // Each fault line comes right after the line saying whether the cluster had recovered from the one before.
        var lines = text.Split('\n');
        var faultLines = Enumerable.Range(0, lines.Length).Where(i => FaultLine().IsMatch(lines[i])).ToList();
        Assert.True(faultLines.Count >= 3, $"only {faultLines.Count} faults injected in 25 s");
        Assert.All(faultLines, i => Assert.Matches(SettleLine(), lines[i - 1]));
        Assert.True(Stretch().IsMatch(text), "no line with the longest stretch without an acknowledged operation");
    }

    /// <summary>
    /// Runs `actorha chaos` with every fault kind and the given arguments, checks it finished with exit code 0 and no
    /// violation, and returns what it printed. Its data directory is removed only then: a failed run's history stays.
    /// </summary>
    private async Task<string> RunChaosWithoutViolationsAsync(TimeSpan limit, params string[] args)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-chaos-spec", Guid.NewGuid().ToString("N"));
        var run = await CliProcess.RunAsync(limit, ["chaos", "--faults", "kill,pause,partition", "--data-dir", dataDir, .. args]);
        output.WriteLine(run.Stdout);
        output.WriteLine(run.Stderr);

        Assert.True(run.Exited, $"the chaos run did not finish within {limit.TotalMinutes:0} minutes");
        Assert.Equal(0, run.Exit);
        Assert.Equal("0", Violations().Match(run.Stdout).Groups[1].Value);
        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in /tmp are harmless.
        }

        return run.Stdout;
    }

    [GeneratedRegex(@"^#   \d\d:\d\d:\d\d\.\d{3} (kill|pause|partition) node\d for ")]
    private static partial Regex FaultLine();

    [GeneratedRegex(@"^#   \d\d:\d\d:\d\d\.\d{3} (settled after [\d.]+ s|not settled after 30 s; the next fault goes ahead)$")]
    private static partial Regex SettleLine();

    [GeneratedRegex(@"^violations (\d+)", RegexOptions.Multiline)]
    private static partial Regex Violations();

    [GeneratedRegex(@"^faults injected (\d+)", RegexOptions.Multiline)]
    private static partial Regex Faults();

    [GeneratedRegex(@"ok (\d+), failed", RegexOptions.Multiline)]
    private static partial Regex Ok();

    [GeneratedRegex(@"^longest stretch without an acknowledged operation: ([\d.]+) s \(from ([\d.]+) s to ([\d.]+) s into the run\)", RegexOptions.Multiline)]
    private static partial Regex Stretch();

    private static double Seconds(Group group) => double.Parse(group.Value, System.Globalization.CultureInfo.InvariantCulture);
}
