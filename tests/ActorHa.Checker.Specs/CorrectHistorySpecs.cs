using static ActorHa.Checker.Specs.Histories;

namespace ActorHa.Checker.Specs;

/// <summary>Linearizable histories, with unknown writes, deletes, re-created keys and compare-and-sets: no false alarms.</summary>
public sealed class CorrectHistorySpecs
{
    [Fact]
    public void An_unknown_write_seen_by_a_read_that_overlaps_it_explains_its_version()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "x", 20, 1000),
            Get(3, "x", 25, 30, 2),
            Put(1, "b", 40, 50, 3),
            Get(3, "b", 60, 70, 3)));
    }

    [Fact]
    public void An_unknown_write_may_take_effect_long_after_its_client_gave_up()
    {
        // No end constraint: the write was still in flight when the client recorded it as unknown.
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "x", 20, 30),
            Get(3, "a", 40, 50, 1),
            Get(3, "x", 60, 70, 2)));
    }

    [Fact]
    public void Unseen_unknown_writes_fill_gaps_including_a_compare_and_set_at_its_expected_version_plus_one()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            CasInfo(2, "x", 20, 30, expected: 1),
            PutInfo(3, "y", 20, 30),
            Get(4, "d", 100, 110, 4),
            Put(1, "d", 40, 50, 4)));
    }

    [Fact]
    public void A_create_only_write_re_creates_a_deleted_key_after_the_tombstone()
    {
        Assert.Empty(Kinds(
            Cas(1, "a", 0, 10, expected: 0, version: 1),
            Put(2, "b", 20, 30, 2),
            Delete(1, 40, 50, 3, expected: 2),
            Get(3, null, 60, 70, null),
            CasFail(2, "late", 60, 70, expected: 2),
            Cas(2, "c", 80, 90, expected: 0, version: 4),
            Get(3, "c", 100, 110, 4),
            Delete(1, 120, 130, 5),
            Put(2, "d", 140, 150, 6),
            Get(3, "d", 160, 170, 6)));
    }

    [Fact]
    public void A_read_of_nothing_may_overlap_the_delete_and_the_re_creation()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            Delete(1, 20, 30, 2),
            Get(2, null, 25, 100, null),
            Put(1, "b", 40, 50, 3),
            Get(3, "b", 60, 70, 3)));
    }

    [Fact]
    public void An_unknown_delete_may_explain_a_read_of_nothing_and_an_unknown_create_only_write_after_it()
    {
        Assert.Empty(Kinds(
            Put(1, "a", 0, 10, 1),
            DeleteInfo(2, 20, 30),
            Get(3, null, 40, 50, null),
            CasInfo(4, "x", 60, 70, expected: 0),
            Get(3, "x", 80, 90, 3)));
    }

    [Fact]
    public void A_read_of_nothing_before_the_first_write_and_concurrent_create_only_writes_pass()
    {
        Assert.Empty(Kinds(
            Get(1, null, 0, 10, null),
            CasInfo(2, "x", 5, 50, expected: 0),
            CasFail(3, "y", 5, 50, expected: 0),
            Get(1, null, 20, 30, null),
            Get(1, "x", 40, 60, 1),
            Cas(3, "z", 70, 80, expected: 1, version: 2)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_linearizable_histories_with_unknown_writes_deletes_and_conditional_writes_pass(int seed)
    {
        for (var round = 0; round < 60; round++)
        {
            // arrange
            var history = LinearizableHistory.Generate(new Random(seed * 1000 + round), processes: 5, operations: 300);

            // act
            var result = HistoryChecker.Check(history);

            // assert
            Assert.True(result.IsValid, $"seed {seed} round {round}: {string.Join(Environment.NewLine, result.Violations.Take(5))}{Environment.NewLine}{string.Join(Environment.NewLine, history.OrderBy(o => o.Start).Select(HistoryFile.ToLine))}");
        }
    }

    [Fact]
    public void A_long_history_with_many_unknown_writes_is_checked_in_a_moment()
    {
        // arrange
        var history = LinearizableHistory.Generate(new Random(7), processes: 8, operations: 20_000, unknownShare: 0.3);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // act
        var result = HistoryChecker.Check(history);

        // assert
        Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Violations.Take(5)));
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }
}
