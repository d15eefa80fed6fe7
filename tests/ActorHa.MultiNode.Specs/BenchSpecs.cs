using System.Globalization;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// `actorha bench load` as users run it: a real two-node cluster started, loaded over HTTP through both nodes,
/// its table printed. The figures themselves are for people to read (docs/performance.md); this checks that the
/// benchmark runs, warms up before it measures, and reports every phase and every node without errors.
/// </summary>
public sealed partial class BenchSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task Bench_load_warms_up_uncounted_then_prints_a_put_and_a_get_row_per_concurrency_with_every_node_and_no_errors()
    {
        // arrange
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-bench-spec", Guid.NewGuid().ToString("N"));

        // act
        var run = await CliProcess.RunAsync(TimeSpan.FromMinutes(3), "bench", "load", "--nodes", "2", "--concurrency", "2,4", "--duration", "2s", "--warmup", "1s", "--data-dir", dataDir);
        var text = run.Stdout;
        output.WriteLine(text);
        output.WriteLine(run.Stderr);

        // assert
        Assert.True(run.Exited, "bench load did not finish within 3 minutes");
        Assert.Equal(0, run.Exit);
        var lines = text.Split('\n', StringSplitOptions.TrimEntries);
        var warmup = lines.Select((l, i) => (Match: WarmUp().Match(l), Index: i)).Single(x => x.Match.Success);
        Assert.True(Number(warmup.Match.Groups[1]) > 0 && Number(warmup.Match.Groups[2]) > 0, "the warm-up did no work");
        var header = Array.FindIndex(lines, l => l.StartsWith("target", StringComparison.Ordinal));
        Assert.True(warmup.Index < header, "the warm-up must come before the measured phases");

        var rows = lines.Select(l => Row().Match(l)).Where(m => m.Success).ToList();
        Assert.Equal(["put 2", "put 4", "get 2", "get 4"], rows.Select(r => $"{r.Groups["op"].Value} {r.Groups["conc"].Value}"));
        Assert.All(rows, r =>
        {
            Assert.True(Number(r.Groups["rps"]) > 0, $"no requests in: {r.Value}");
            Assert.Equal("0", r.Groups["errors"].Value);
            Assert.Equal(2, Regex.Matches(r.Groups["processes"].Value, @"cpu \d+% rss \d+ MiB").Count);
        });
        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in /tmp are harmless.
        }
    }

    private static long Number(Group group) => long.Parse(group.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^# warm-up of actorha \(not counted\): 1 s of writes \((\d+)/s\), then 1 s of reads \((\d+)/s\) at c=4$")]
    private static partial Regex WarmUp();

    [GeneratedRegex(@"^actorha\s+(?<op>put|get)\s+(?<conc>\d+)\s+(?<rps>\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(?<errors>\d+)\s+(?<processes>.*)$")]
    private static partial Regex Row();
}
