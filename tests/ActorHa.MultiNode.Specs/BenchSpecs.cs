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
        var lines = await BenchLoadAsync("--nodes", "2", "--concurrency", "2,4", "--duration", "2s", "--warmup", "1s", "--data-dir", dataDir);

        // assert
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
            Assert.True(Number(r.Groups["cpu"]) > 0, $"no CPU per request in: {r.Value}");
            Assert.Equal(2, Regex.Matches(r.Groups["processes"].Value, @"cpu \d+% rss \d+ MiB").Count);
        });
        Assert.Contains("every acknowledged write is durable", lines[0], StringComparison.Ordinal);
        Assert.True(JournalRows(dataDir) > 0, "the writes were acknowledged but none is in the store's journal");
        DeleteQuietly(dataDir);
    }

    [Fact]
    public async Task Bench_load_with_the_journal_in_memory_says_its_writes_are_not_durable_and_leaves_the_stores_journal_empty()
    {
        // arrange
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-bench-spec", Guid.NewGuid().ToString("N"));

        // act
        var lines = await BenchLoadAsync("--nodes", "1", "--concurrency", "4", "--duration", "2s", "--warmup", "1s", "--journal", "memory", "--data-dir", dataDir);

        // assert
        Assert.StartsWith("# load: 1 ActorHa nodes, journal IN MEMORY", lines[0], StringComparison.Ordinal);
        Assert.Contains("writes are NOT durable", lines[0], StringComparison.Ordinal);
        var put = lines.Select(l => AnyRow().Match(l)).Single(m => m.Success && m.Groups["op"].Value == "put");
        Assert.True(Number(put.Groups["rps"]) > 0, $"no writes in: {put.Value}");
        Assert.Equal(0, JournalRows(dataDir));
        var log = File.ReadAllText(Directory.GetFiles(dataDir, "node1.log", SearchOption.AllDirectories).Single());
        Assert.Contains("acknowledged writes are NOT durable", log, StringComparison.Ordinal);
        DeleteQuietly(dataDir);
    }

    [Fact]
    public async Task Bench_load_with_compare_etcd_loads_a_three_member_etcd_the_same_way_and_prints_the_ratio_and_a_verdict_that_matches_the_figures()
    {
        // arrange
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-bench-spec", Guid.NewGuid().ToString("N"));

        // act
        var lines = await BenchLoadAsync("--nodes", "1", "--concurrency", "4", "--duration", "2s", "--warmup", "1s", "--compare-etcd", "--data-dir", dataDir);

        // assert
        Assert.Contains(lines, l => l.StartsWith("# warm-up of etcd (not counted)", StringComparison.Ordinal));
        var rows = lines.Select(l => AnyRow().Match(l)).Where(m => m.Success).ToDictionary(m => $"{m.Groups["target"].Value} {m.Groups["op"].Value}");
        Assert.Equal(["actorha put", "actorha get", "etcd put", "etcd get"], rows.Keys);
        Assert.All(rows.Values, r =>
        {
            Assert.Equal("0", r.Groups["errors"].Value);
            Assert.True(Number(r.Groups["cpu"]) > 0, $"no CPU per request in: {r.Value}");
        });
        Assert.Equal(3, Regex.Matches(rows["etcd put"].Groups["processes"].Value, @"cpu \d+% rss \d+ MiB").Count);

        var (actorha, etcd) = (rows["actorha put"], rows["etcd put"]);
        var ratio = lines.Select(l => Ratio().Match(l)).Single(m => m.Success);
        Assert.Equal(actorha.Groups["rps"].Value, ratio.Groups["a"].Value);
        Assert.Equal(etcd.Groups["rps"].Value, ratio.Groups["e"].Value);
        Assert.Equal(actorha.Groups["cpu"].Value, ratio.Groups["acpu"].Value);
        Assert.Equal(etcd.Groups["cpu"].Value, ratio.Groups["ecpu"].Value);

        // The verdict is recomputed from the printed figures, which are what the benchmark judges too.
        var met = Number(actorha.Groups["rps"]) >= 1.5 * Number(etcd.Groups["rps"]) && Decimal(actorha.Groups["p99"]) <= Decimal(etcd.Groups["p99"]);
        var goal = lines.Single(l => l.StartsWith("goal at c=4 ", StringComparison.Ordinal));
        Assert.Contains(met ? "writes met" : "writes not met", goal, StringComparison.Ordinal);
        Assert.Contains(Number(rows["actorha get"].Groups["rps"]) >= 10_000 ? "reads met" : "reads not met", goal, StringComparison.Ordinal);
        DeleteQuietly(dataDir);
    }

    /// <summary>Runs `actorha bench load` with <paramref name="args"/> to its end (3 minutes at most) and exit code 0, shows its output, and returns its lines.</summary>
    private async Task<string[]> BenchLoadAsync(params string[] args)
    {
        var run = await CliProcess.RunAsync(TimeSpan.FromMinutes(3), ["bench", "load", .. args]);
        output.WriteLine(run.Stdout);
        output.WriteLine(run.Stderr);
        Assert.True(run.Exited, $"bench load {string.Join(' ', args)} did not finish within 3 minutes");
        Assert.Equal(0, run.Exit);
        return run.Stdout.Split('\n', StringSplitOptions.TrimEntries);
    }

    /// <summary>Events in the journal of the one SQLite store a benchmark run left under <paramref name="dataDir"/> (0 without a journal table).</summary>
    private static long JournalRows(string dataDir)
    {
        var file = Directory.GetFiles(dataDir, "actorha.db", SearchOption.AllDirectories).Single();
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={file};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'event_journal'";
        if ((long)command.ExecuteScalar()! == 0)
        {
            return 0;
        }

        command.CommandText = "SELECT count(*) FROM event_journal";
        return (long)command.ExecuteScalar()!;
    }

    private static void DeleteQuietly(string dataDir)
    {
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

    private static decimal Decimal(Group group) => decimal.Parse(group.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^# warm-up of actorha \(not counted\): 1 s of writes \((\d+)/s\), then 1 s of reads \((\d+)/s\) at c=4$")]
    private static partial Regex WarmUp();

    [GeneratedRegex(@"^actorha\s+(?<op>put|get)\s+(?<conc>\d+)\s+(?<rps>\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(?<errors>\d+)\s+(?<cpu>\d+) µs\s+(?<processes>.*)$")]
    private static partial Regex Row();

    [GeneratedRegex(@"^(?<target>actorha|etcd)\s+(?<op>put|get)\s+4\s+(?<rps>\d+)\s+[\d.]+\s+(?<p99>[\d.]+)\s+[\d.]+\s+(?<errors>\d+)\s+(?<cpu>\d+) µs\s+(?<processes>.*)$")]
    private static partial Regex AnyRow();

    [GeneratedRegex(@"^durable writes at c=4: ActorHa/etcd = [\d.]+x throughput \((?<a>\d+)/s vs (?<e>\d+)/s\), p99 [\d.]+ ms vs [\d.]+ ms, CPU per write (?<acpu>\d+) µs vs (?<ecpu>\d+) µs$")]
    private static partial Regex Ratio();
}
