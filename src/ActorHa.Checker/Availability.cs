namespace ActorHa.Checker;

/// <summary>
/// What the clients of a history felt of the faults, next to what the checker judges: a linearizable history can
/// still hide a cluster that served nothing for half a minute.
/// </summary>
public static class Availability
{
    /// <summary>
    /// The longest stretch, in the history's time units, in which no operation was acknowledged: from the first
    /// operation's start or an acknowledgement to the next acknowledgement, or to the end of the last operation when no
    /// acknowledgement followed. Failed and indeterminate operations do not end a stretch. Null for an empty history.
    /// </summary>
    public static (long From, long To)? LongestStretchWithoutAnAcknowledgement(IReadOnlyCollection<Operation> history)
    {
        if (history.Count == 0)
        {
            return null;
        }

        var from = history.Min(o => o.Start);
        var longest = (From: from, To: from);
        foreach (var acknowledged in history.Where(o => o.Result == OpResult.Ok).Select(o => o.End).Order())
        {
            if (acknowledged - from > longest.To - longest.From)
            {
                longest = (from, acknowledged);
            }

            from = Math.Max(from, acknowledged);
        }

        var last = history.Max(o => o.End);
        return last - from > longest.To - longest.From ? (from, last) : longest;
    }
}
