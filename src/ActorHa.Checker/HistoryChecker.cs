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
}

public sealed record Violation(ViolationKind Kind, string Key, string Detail);

public sealed record CheckResult(IReadOnlyList<Violation> Violations, int Operations, int Ok, int Failed, int Indeterminate)
{
    public bool IsValid => Violations.Count == 0;
}

/// <summary>
/// Checks a history of operations on versioned registers (one per key) against what ActorHa promises:
/// <list type="bullet">
/// <item>each key's acknowledged versions are unique, and a compare-and-set that succeeded got expected + 1;</item>
/// <item>a read returns the value written at the version it reports, by a write that was not refused;</item>
/// <item>real-time order: an operation that began after another ended sees (read) or gets (write) a version at
/// least as new as the first one's, strictly newer for a write — no stale read, no lost write, no reordering;</item>
/// <item>every version of a key is explained by a write in the history (acknowledged or indeterminate).</item>
/// </list>
/// Indeterminate operations may or may not have happened, as in Jepsen: they can explain a version or a
/// value, but never constrain anything. Per key the check is O(n log n).
/// </summary>
public static class HistoryChecker
{
    public static CheckResult Check(IEnumerable<Operation> history)
    {
        var ops = history.ToList();
        var violations = new List<Violation>();
        foreach (var key in ops.GroupBy(o => o.Key, StringComparer.Ordinal))
        {
            CheckKey(key.Key, key.ToList(), violations);
        }

        return new CheckResult(violations, ops.Count,
            ops.Count(o => o.Result == OpResult.Ok), ops.Count(o => o.Result == OpResult.Fail), ops.Count(o => o.Result == OpResult.Info));
    }

    private static void CheckKey(string key, List<Operation> ops, List<Violation> violations)
    {
        var okWrites = ops.Where(o => o.IsWrite && o.Result == OpResult.Ok && o.Version is not null).ToList();
        var okReads = ops.Where(o => o.Op == OpKind.Get && o.Result == OpResult.Ok).ToList();

        // 1. Unique versions, and CAS gets exactly expected + 1.
        foreach (var dup in okWrites.GroupBy(w => w.Version!.Value).Where(g => g.Count() > 1))
        {
            violations.Add(new(ViolationKind.DuplicateVersion, key, $"version {dup.Key} acknowledged to {dup.Count()} writes: {string.Join(", ", dup.Select(Describe))}"));
        }

        foreach (var cas in okWrites.Where(w => w.Op == OpKind.Cas && w.Version != w.ExpectedVersion + 1))
        {
            violations.Add(new(ViolationKind.BadCasVersion, key, $"{Describe(cas)} expected version {cas.ExpectedVersion} but got {cas.Version}"));
        }

        // 2. Reads return a value some non-refused write wrote, at that write's version.
        var okByVersion = okWrites.GroupBy(w => w.Version!.Value).ToDictionary(g => g.Key, g => g.First());
        var possibleValues = ops.Where(o => o.IsWrite && o.Result != OpResult.Fail && o.Value is not null).Select(o => o.Value!).ToHashSet(StringComparer.Ordinal);
        var refusedValues = ops.Where(o => o.IsWrite && o.Result == OpResult.Fail && o.Value is not null).Select(o => o.Value!).ToHashSet(StringComparer.Ordinal);
        foreach (var read in okReads.Where(r => !r.NotFound))
        {
            if (read.Version is { } v && okByVersion.TryGetValue(v, out var writer))
            {
                if (writer.Op != OpKind.Delete && !string.Equals(writer.Value, read.Value, StringComparison.Ordinal))
                {
                    violations.Add(new(ViolationKind.WrongValueForVersion, key, $"{Describe(read)} but version {v} was written as '{writer.Value}' by {Describe(writer)}"));
                }
            }
            else if (read.Value is not null && !possibleValues.Contains(read.Value))
            {
                violations.Add(refusedValues.Contains(read.Value)
                    ? new(ViolationKind.FailedWriteVisible, key, $"{Describe(read)} saw a value whose write was refused")
                    : new(ViolationKind.PhantomValue, key, $"{Describe(read)} saw a value no write produced"));
            }
        }

        // 3. Real time: sweep operations by start, with the completed ones (by end) folded into a high-water mark.
        var completed = ops.Where(o => o.Result == OpResult.Ok && VersionSeen(o) is not null).OrderBy(o => o.End).ToList();
        var starting = ops.Where(o => o.Result == OpResult.Ok).OrderBy(o => o.Start).ToList();
        var index = 0;
        Operation? newest = null;
        foreach (var op in starting)
        {
            while (index < completed.Count && completed[index].End < op.Start)
            {
                if (newest is null || VersionSeen(completed[index]) > VersionSeen(newest))
                {
                    newest = completed[index];
                }

                index++;
            }

            if (newest is null)
            {
                continue;
            }

            var floor = VersionSeen(newest)!.Value;
            if (op.IsWrite && op.Version is { } written && written <= floor)
            {
                violations.Add(new(ViolationKind.Reordered, key, $"{Describe(op)} got version {written}, not newer than {floor} of {Describe(newest)}, which ended before it began"));
            }
            else if (op.Op == OpKind.Get)
            {
                var seen = VersionSeen(op);
                var deletedSince = op.NotFound && ops.Any(d => d.Op == OpKind.Delete && d.Result != OpResult.Fail && d.Start < op.End && (d.Version is null || d.Version >= floor));
                if ((seen is null || seen < floor) && !deletedSince)
                {
                    // A read that sees nothing, or less, after an acknowledged write completed: stale, or the write is lost.
                    var lost = op.NotFound;
                    violations.Add(new(lost ? ViolationKind.LostWrite : ViolationKind.StaleRead, key,
                        $"{Describe(op)} saw {(seen is null ? "nothing" : $"version {seen}")} after {Describe(newest)} (version {floor}) had completed"));
                }
            }
        }

        // 4. Every version up to the highest seen must be explained by some write that was not refused.
        var highest = ops.Where(o => o.Result == OpResult.Ok).Select(VersionSeen).Where(v => v is not null).Select(v => v!.Value).DefaultIfEmpty(0).Max();
        var explained = okWrites.Select(w => w.Version!.Value).ToHashSet();
        var unknown = ops.Count(o => o.IsWrite && o.Result == OpResult.Info);
        var gaps = Enumerable.Range(1, (int)Math.Min(highest, int.MaxValue)).Count(v => !explained.Contains(v));
        if (gaps > unknown)
        {
            violations.Add(new(ViolationKind.UnexplainedVersion, key, $"{gaps} versions up to {highest} were neither acknowledged nor possibly written by the {unknown} indeterminate writes"));
        }
    }

    /// <summary>The version an ok operation proves exists: a write's version, a read's version (0 for nothing).</summary>
    private static long? VersionSeen(Operation o) => o switch
    {
        { IsWrite: true, Version: { } v } => v,
        { Op: OpKind.Get, NotFound: true } => 0,
        { Op: OpKind.Get, Version: { } v } => v,
        _ => null,
    };

    private static string Describe(Operation o) =>
        $"{o.Op.ToString().ToLowerInvariant()}#p{o.Process}[{o.Start}..{o.End}]" + (o.Value is null ? "" : $" '{o.Value}'") + (o.Version is null ? "" : $" v{o.Version}");
}
