namespace ActorHa.Checker;

public enum ViolationKind
{
    DuplicateVersion,
    StaleRead,
    LostWrite,
    Reordered,
    PhantomValue,
    FailedWriteVisible,
    WrongValueForVersion,
    BadCasVersion,
    UnexplainedVersion,
    ValueAtTwoVersions,
    MalformedOperation,
}

public sealed record Violation(ViolationKind Kind, string Key, string Detail);

public sealed record CheckResult(IReadOnlyList<Violation> Violations, int Operations, int Ok, int Failed, int Indeterminate)
{
    public bool IsValid => Violations.Count == 0;
}

/// <summary>
/// Checks a history of operations on versioned registers (one per key) against what ActorHa promises. Every
/// write that takes effect gets the key's next version, so the versions give the order of the writes and each
/// read names its place in it; what is left to check is that this order explains every answer and respects real
/// time. Values are assumed unique per write on a key (the chaos workload makes them so): a value identifies its
/// write, so a read of an indeterminate write's value proves that write happened, at the version the read reports.
/// See <see cref="KeyHistory"/> for the rules. Indeterminate reads say nothing and are ignored.
/// </summary>
public static class HistoryChecker
{
    public static CheckResult Check(IEnumerable<Operation> history)
    {
        var ops = history.ToList();
        var violations = new List<Violation>();
        foreach (var key in ops.GroupBy(o => o.Key, StringComparer.Ordinal))
        {
            new KeyHistory(key.Key, key.ToList(), violations).Check();
        }

        return new CheckResult(violations, ops.Count,
            ops.Count(o => o.Result == OpResult.Ok), ops.Count(o => o.Result == OpResult.Fail), ops.Count(o => o.Result == OpResult.Info));
    }

    internal static string Describe(Operation o) =>
        $"{o.Op.ToString().ToLowerInvariant()}#p{o.Process}[{o.Start}..{o.End}]"
        + (o.ExpectedVersion is { } e ? $" if-{(e == 0 && o.Op == OpKind.Cas ? "absent" : $"v{e}")}" : "")
        + (o.Value is null ? "" : $" '{o.Value}'")
        + (o.Result == OpResult.Info ? " (outcome unknown)" : "")
        + (o.Version is null ? "" : $" v{o.Version}")
        + (o is { Op: OpKind.Get, Result: OpResult.Ok, NotFound: true } ? " not found" : "");
}
