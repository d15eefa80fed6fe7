using ActorHa.Checker;

namespace ActorHa.MultiNode.Specs;

/// <summary>`actorha check FILE`, the real program: a recorded history checked again, as after a chaos run.</summary>
public sealed class CheckCommandSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string Write(params Operation[] history)
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorha-check-spec-{Guid.NewGuid():N}.jsonl");
        HistoryFile.Write(path, history);
        return path;
    }

    [Fact]
    public async Task A_history_with_a_stale_read_exits_1_and_names_the_violation_and_a_clean_one_exits_0()
    {
        // arrange: v2 acknowledged, then a read that started later still sees v1
        var stale = Write(
            new Operation(1, OpKind.Put, "k", "a", 0, 10, OpResult.Ok, Version: 1),
            new Operation(1, OpKind.Put, "k", "b", 20, 30, OpResult.Ok, Version: 2),
            new Operation(2, OpKind.Get, "k", "a", 40, 50, OpResult.Ok, Version: 1));
        var clean = Write(
            new Operation(1, OpKind.Put, "k", "a", 0, 10, OpResult.Ok, Version: 1),
            new Operation(2, OpKind.Get, "k", "a", 20, 30, OpResult.Ok, Version: 1));

        // act
        var bad = await CliProcess.RunAsync(Timeout, "check", stale);
        var good = await CliProcess.RunAsync(Timeout, "check", clean);
        File.Delete(stale);
        File.Delete(clean);

        // assert
        Assert.True(bad.Exit == 1, bad.ToString());
        Assert.Contains("violations 1", bad.Stdout, StringComparison.Ordinal);
        Assert.Contains("StaleRead k", bad.Stdout, StringComparison.Ordinal);
        Assert.True(good.Exit == 0, good.ToString());
        Assert.Contains("violations 0", good.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_file_that_is_missing_or_not_a_history_is_one_line_and_exit_code_2()
    {
        var garbage = Path.Combine(Path.GetTempPath(), $"actorha-check-spec-{Guid.NewGuid():N}.jsonl");
        await File.WriteAllTextAsync(garbage, "not json\n");

        var missing = await CliProcess.RunAsync(Timeout, "check", "/nonexistent/history.jsonl");
        var notHistory = await CliProcess.RunAsync(Timeout, "check", garbage);
        File.Delete(garbage);

        Assert.True(missing.Exit == 2, missing.ToString());
        Assert.Single(missing.Stderr.Trim().Split('\n'));
        Assert.True(notHistory.Exit == 2, notHistory.ToString());
        Assert.StartsWith("actorha check: cannot read", notHistory.Stderr, StringComparison.Ordinal);
    }
}
