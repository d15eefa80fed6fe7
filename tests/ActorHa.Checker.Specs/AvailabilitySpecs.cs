using ActorHa.Checker;

namespace ActorHa.Checker.Specs;

public sealed class AvailabilitySpecs
{
    private static Operation Op(OpResult result, long start, long end) => new(1, OpKind.Put, "k", "v", start, end, result, result == OpResult.Ok ? 1 : null);

    [Fact]
    public void The_longest_stretch_runs_between_the_two_acknowledgements_furthest_apart_whatever_failed_in_between()
    {
        var history = new[]
        {
            Op(OpResult.Ok, 0, 10),
            Op(OpResult.Ok, 5, 20),
            Op(OpResult.Fail, 21, 40),
            Op(OpResult.Info, 30, 70),
            Op(OpResult.Ok, 22, 80),
            Op(OpResult.Ok, 81, 90),
        };

        Assert.Equal((20L, 80L), Availability.LongestStretchWithoutAnAcknowledgement(history));
    }

    [Fact]
    public void Failures_after_the_last_acknowledgement_make_a_stretch_up_to_the_end_of_the_last_operation()
    {
        var history = new[] { Op(OpResult.Ok, 0, 10), Op(OpResult.Ok, 10, 15), Op(OpResult.Fail, 16, 60), Op(OpResult.Info, 20, 100) };

        Assert.Equal((15L, 100L), Availability.LongestStretchWithoutAnAcknowledgement(history));
    }

    [Fact]
    public void A_history_without_an_acknowledgement_is_one_stretch_from_its_first_start_to_its_last_end_and_an_empty_one_has_none()
    {
        Assert.Equal((3L, 50L), Availability.LongestStretchWithoutAnAcknowledgement([Op(OpResult.Fail, 3, 9), Op(OpResult.Info, 4, 50)]));
        Assert.Null(Availability.LongestStretchWithoutAnAcknowledgement([]));
    }

    [Fact]
    public void Acknowledgements_overlapping_out_of_order_never_shorten_or_reverse_a_stretch()
    {
        // Sorted by end, not by start: the operation that started first ends last.
        var history = new[] { Op(OpResult.Ok, 0, 100), Op(OpResult.Ok, 1, 30), Op(OpResult.Ok, 2, 40) };

        Assert.Equal((40L, 100L), Availability.LongestStretchWithoutAnAcknowledgement(history));
    }
}
