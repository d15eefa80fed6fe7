using static ActorHa.Checker.Specs.Histories;

namespace ActorHa.Checker.Specs;

/// <summary>
/// Histories that are not linearizable although the key has writes with an unknown outcome, which once
/// excused them: an unknown write may or may not have happened, but a read of its value proves it happened at
/// the version read, and it explains at most one version, one it could have landed at.
/// </summary>
public sealed class UnknownWriteSoundnessSpecs
{
    [Fact]
    public void A_version_read_with_two_different_values_is_a_violation_even_when_an_unknown_write_could_explain_the_gap()
    {
        var kinds = Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "x", 0, 100),
            Get(3, "x", 20, 30, 2),
            Get(3, "a", 40, 50, 2));

        Assert.Contains(ViolationKind.WrongValueForVersion, kinds);
        Assert.Contains(ViolationKind.ValueAtTwoVersions, kinds);
    }

    [Fact]
    public void An_acknowledged_write_read_again_at_a_later_version_is_a_violation_even_with_an_unknown_create_only_write_on_the_key()
    {
        // The create-only write could only have made version 1, and began after version 2 was read.
        var kinds = Kinds(
            Put(1, "a", 0, 10, 1),
            Get(2, "a", 20, 30, 2),
            CasInfo(3, "z", 40, 50, expected: 0));

        Assert.Contains(ViolationKind.ValueAtTwoVersions, kinds);
        Assert.Contains(ViolationKind.UnexplainedVersion, kinds);
    }

    [Fact]
    public void An_acknowledged_write_read_again_at_a_later_version_is_a_violation()
    {
        var kinds = Kinds(
            Put(1, "a", 0, 10, 1),
            Get(2, "a", 20, 30, 2));

        Assert.Contains(ViolationKind.ValueAtTwoVersions, kinds);
        Assert.Contains(ViolationKind.UnexplainedVersion, kinds);
    }

    [Fact]
    public void An_unknown_compare_and_set_seen_at_another_version_than_expected_plus_one_is_a_lost_update()
    {
        Assert.Equal([ViolationKind.BadCasVersion], Kinds(
            Put(1, "a", 0, 10, 1),
            Cas(2, "b", 20, 30, expected: 1, version: 2),
            CasInfo(3, "x", 20, 40, expected: 1),
            Get(4, "x", 50, 60, 3)));
    }

    [Fact]
    public void A_read_of_an_unknown_write_that_ended_before_the_write_began_is_reordered()
    {
        Assert.Equal([ViolationKind.Reordered], Kinds(
            Get(1, "x", 0, 10, 1),
            PutInfo(2, "x", 20, 30)));
    }

    [Fact]
    public void An_unknown_write_seen_below_a_version_completed_before_it_began_is_reordered()
    {
        Assert.Equal([ViolationKind.Reordered], Kinds(
            Put(1, "a", 0, 10, 1),
            Put(1, "b", 20, 30, 3),
            PutInfo(2, "x", 40, 50),
            Get(3, "x", 15, 60, 2)));
    }

    [Fact]
    public void An_unknown_write_read_at_two_versions_was_applied_twice_even_when_another_unknown_write_could_fill_the_gap()
    {
        Assert.Equal([ViolationKind.ValueAtTwoVersions], Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "x", 20, 30),
            PutInfo(2, "y", 20, 30),
            Get(3, "x", 40, 50, 2),
            Get(3, "x", 60, 70, 3)));
    }

    [Fact]
    public void A_value_read_at_a_delete_version_is_a_violation()
    {
        Assert.Contains(ViolationKind.WrongValueForVersion, Kinds(
            Put(1, "a", 0, 10, 1),
            Delete(1, 20, 30, 2),
            Get(2, "a", 40, 50, 2)));
    }

    [Fact]
    public void A_read_of_nothing_places_the_delete_before_it_so_a_later_read_of_the_old_value_is_stale()
    {
        Assert.Equal([ViolationKind.StaleRead], Kinds(
            Put(1, "a", 0, 10, 1),
            Delete(2, 15, 100, 2),
            Get(3, null, 20, 30, null),
            Get(4, "a", 40, 50, 1)));
    }

    [Fact]
    public void An_acknowledged_write_without_a_version_is_reported_as_malformed_not_ignored()
    {
        Assert.Contains(ViolationKind.MalformedOperation, Kinds(
            new Operation(1, OpKind.Put, "k", "a", 0, 10, OpResult.Ok),
            Get(2, null, 20, 30, null)));
    }

    [Fact]
    public void A_value_read_at_another_version_than_its_acknowledged_one_before_its_write_began_is_a_violation()
    {
        Assert.Equal([ViolationKind.ValueAtTwoVersions], Kinds(
            Put(1, "a", 0, 10, 1),
            PutInfo(2, "x", 0, 100),
            Get(3, "c", 20, 30, 2),
            Put(1, "c", 40, 50, 3)));
    }

    [Fact]
    public void A_delete_with_If_Match_must_land_at_the_next_version_even_when_unknown_writes_could_fill_the_gap()
    {
        Assert.Equal([ViolationKind.BadCasVersion], Kinds(
            Put(1, "a", 0, 10, 1),
            Delete(1, 20, 30, 5, expected: 1),
            PutInfo(2, "q", 0, 100),
            PutInfo(2, "r", 0, 100),
            PutInfo(2, "s", 0, 100)));
    }

    [Fact]
    public void An_unknown_write_fills_no_gap_below_a_version_that_completed_before_it_began()
    {
        Assert.Equal([ViolationKind.UnexplainedVersion], Kinds(
            Put(1, "a", 0, 10, 1),
            Put(1, "b", 20, 30, 3),
            PutInfo(2, "x", 40, 50)));
    }

    [Fact]
    public void Each_unknown_write_fills_one_gap_and_a_compare_and_set_only_its_own()
    {
        // Versions 2 and 3 are missing; the compare-and-set expecting 1 can fill 2, nothing can fill 3.
        Assert.Equal([ViolationKind.UnexplainedVersion], Kinds(
            Put(1, "a", 0, 10, 1),
            CasInfo(2, "x", 0, 100, expected: 1),
            CasInfo(3, "y", 0, 100, expected: 1),
            Put(1, "d", 200, 210, 4)));
    }

    [Fact]
    public void A_create_only_write_seen_where_the_key_existed_is_a_violation()
    {
        Assert.Equal([ViolationKind.BadCasVersion], Kinds(
            Put(1, "a", 0, 10, 1),
            CasInfo(2, "x", 20, 30, expected: 0),
            Get(3, "x", 40, 50, 2)));
    }

    [Fact]
    public void A_delete_acknowledged_where_the_key_was_absent_is_a_violation()
    {
        Assert.Contains(ViolationKind.BadCasVersion, Kinds(
            Delete(1, 0, 10, 1)));
    }

    [Fact]
    public void Negative_huge_and_missing_versions_are_reported_without_throwing_or_walking_the_range()
    {
        // arrange
        var history = new[]
        {
            Put(1, "a", 0, 10, -3),
            Put(1, "b", 20, 30, long.MaxValue),
            Get(2, "b", 40, 50, long.MaxValue),
            new Operation(2, OpKind.Get, "k", "c", 60, 70, OpResult.Ok),
            new Operation(3, OpKind.Cas, "k", "d", 80, 90, OpResult.Ok, long.MaxValue, long.MaxValue),
            new Operation(3, OpKind.Put, "k", "e", 100, 90, OpResult.Ok, 5),
        };

        // act
        var kinds = Kinds(history);

        // assert
        Assert.Equal(3, kinds.Count(k => k == ViolationKind.MalformedOperation));
        Assert.Contains(ViolationKind.UnexplainedVersion, kinds);
        Assert.Contains(ViolationKind.DuplicateVersion, kinds);
    }
}
