using static ActorHa.Checker.HistoryChecker;

namespace ActorHa.Checker;

/// <summary>
/// One key's history checked as a versioned register. Every write that takes effect gets the next version, so
/// the versions order the writes and each read names its place in that order; the history is linearizable when
/// that order explains every answer and respects real time:
/// <list type="number">
/// <item>Inputs: an acknowledged write without a version, a read of a value without one, a version below 1,
/// an end before a start are reported as malformed and left out.</item>
/// <item>Identity: a version holds one thing (a value, or a delete's tombstone), and a value, written once, is at
/// one version. A read of an indeterminate write's value proves that write happened and pins it to the read's
/// version; a value no write (or only a refused one) wrote is a phantom.</item>
/// <item>Conditions: a compare-and-set, acknowledged or pinned, lands at expected + 1; a create-only write at 1
/// or right after a tombstone; a delete with If-Match at expected + 1, and never where the key is absent.</item>
/// <item>Real time: an operation that began after another ended is ordered after it: a write gets a higher
/// version, a read sees at least its version. A pinned indeterminate write counts from its start and has no
/// end: whatever completed before it began has a lower version. A read of nothing is placed at the lowest
/// absence (0, or a delete's version, that delete begun before the read ended) not below what completed before
/// it began, and later operations must not go below that.</item>
/// <item>Gaps: a version below the highest seen that nobody acknowledged or was seen at must have been written
/// by an indeterminate write nobody saw; each fills at most one (a bipartite matching), a compare-and-set only
/// expected + 1, a create-only write only 1 or right after a tombstone, and none at or below a version that
/// completed before it began.</item>
/// </list>
/// Deletes with an unknown outcome are never seen (they have no value); they may place a tombstone in any gap
/// they could fill, a little more loosely than the matching (one such delete may excuse several reads of nothing).
/// </summary>
internal sealed class KeyHistory(string key, IReadOnlyList<Operation> history, List<Violation> violations)
{
    private const int Listed = 10;

    private sealed class Timed(Operation op, long version, bool pinned)
    {
        public Operation Op { get; } = op;

        /// <summary>The version it is placed at: its own, the one it saw, or for a read of nothing, the absence chosen.</summary>
        public long Version { get; set; } = version;

        /// <summary>An indeterminate write seen by a read: it starts, but never ends.</summary>
        public bool Pinned { get; } = pinned;
    }

    public void Check()
    {
        var ops = new List<Operation>();
        foreach (var op in history)
        {
            if (Malformed(op) is { } why)
            {
                Report(ViolationKind.MalformedOperation, $"{Describe(op)} {why}; left out of the check");
            }
            else
            {
                ops.Add(op);
            }
        }

        var okWrites = ops.Where(o => o is { IsWrite: true, Result: OpResult.Ok }).ToList();
        var valueReads = ops.Where(o => o is { Op: OpKind.Get, Result: OpResult.Ok, NotFound: false }).ToList();
        var notFoundReads = ops.Where(o => o is { Op: OpKind.Get, Result: OpResult.Ok, NotFound: true }).ToList();
        var unknownWrites = ops.Where(o => o is { IsWrite: true, Result: OpResult.Info }).ToList();
        var tombstones = okWrites.Where(w => w.Op == OpKind.Delete).Select(w => w.Version!.Value).ToHashSet();

        var pinned = CheckIdentity(ops, okWrites, valueReads);
        var explained = okWrites.Select(w => w.Version!.Value).Concat(pinned.Values).ToHashSet();
        var pool = unknownWrites.Where(w => !pinned.ContainsKey(w)).ToList();
        var unknownDeletes = pool.Where(w => w.Op == OpKind.Delete).ToList();

        // A create-only write may follow a tombstone an unseen delete left in a gap (loosely, see the summary).
        bool absentBefore(long v) => v == 1 || tombstones.Contains(v - 1) || (unknownDeletes.Count > 0 && v > 1 && !explained.Contains(v - 1));
        foreach (var (write, version) in okWrites.Select(w => (w, w.Version!.Value)).Concat(pinned.Select(p => (p.Key, p.Value))))
        {
            if (ConditionBroken(write, version, absentBefore, tombstones) is { } broken)
            {
                Report(ViolationKind.BadCasVersion, $"{Describe(write)}{(write.Result == OpResult.Info ? $", seen at version {version}," : "")} {broken}");
            }
        }

        var highest = okWrites.Select(w => w.Version!.Value).Concat(valueReads.Select(r => r.Version!.Value)).Concat(pinned.Values).DefaultIfEmpty(0).Max();
        var gaps = FindGaps(explained, highest, pool.Count);

        var absences = new List<(long Version, long Since)> { (0, long.MinValue) };
        absences.AddRange(okWrites.Where(w => w.Op == OpKind.Delete).Select(d => (d.Version!.Value, d.Start)));
        if (unknownDeletes.Count > 0)
        {
            // The earliest an unseen delete could have left a tombstone in each gap it could fill.
            var anywhere = unknownDeletes.Where(d => d.ExpectedVersion is null).Select(d => d.Start).DefaultIfEmpty(long.MaxValue).Min();
            var matching = unknownDeletes.Where(d => d.ExpectedVersion is not null).GroupBy(d => d.ExpectedVersion!.Value).ToDictionary(g => g.Key, g => g.Min(d => d.Start));
            absences.AddRange(gaps.Where(g => g > 1 && !tombstones.Contains(g - 1))
                .Select(g => (g, Math.Min(anywhere, matching.GetValueOrDefault(g - 1, long.MaxValue))))
                .Where(a => a.Item2 < long.MaxValue));
        }

        absences.Sort();
        var completed = CheckRealTime(okWrites, pinned, valueReads, notFoundReads, absences);
        if (gaps.Count > 0)
        {
            MatchGaps(gaps, pool, completed, absentBefore, tombstones);
        }
    }

    private static string? Malformed(Operation o) => o switch
    {
        _ when o.End < o.Start => "ends before it starts",
        { ExpectedVersion: < 0 } => "expects a negative version",
        { Op: OpKind.Put or OpKind.Cas, Value: null } => "is a write without a value",
        { Op: OpKind.Cas, ExpectedVersion: null } => "is a compare-and-set without an expected version",
        { Result: OpResult.Ok, IsWrite: true, Version: null } => "was acknowledged without a version, so nothing about it could be checked",
        { Result: OpResult.Ok, Op: OpKind.Get, NotFound: false, Value: null } => "read neither a value nor 'not found'",
        { Result: OpResult.Ok, Op: OpKind.Get, NotFound: false, Version: null } => "read a value without a version",
        { Result: OpResult.Ok, Version: < 1 } and not { Op: OpKind.Get, NotFound: true } => "reports a version below 1",
        _ => null,
    };

    /// <summary>Versions and values match one to one; returns the indeterminate writes a read saw, with the version.</summary>
    private Dictionary<Operation, long> CheckIdentity(List<Operation> ops, List<Operation> okWrites, List<Operation> valueReads)
    {
        var writers = ops.Where(o => o is { Op: OpKind.Put or OpKind.Cas } && o.Result != OpResult.Fail)
            .GroupBy(o => o.Value!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var refused = ops.Where(o => o is { Op: OpKind.Put or OpKind.Cas, Result: OpResult.Fail }).Select(o => o.Value!).ToHashSet(StringComparer.Ordinal);

        // What each version holds (a value, or null for a tombstone), and who says so.
        var claims = new Dictionary<long, List<(string? Content, Operation Source)>>();
        void claim(long version, string? content, Operation source)
        {
            if (!claims.TryGetValue(version, out var list))
            {
                claims[version] = list = [];
            }

            list.Add((content, source));
        }

        foreach (var write in okWrites)
        {
            claim(write.Version!.Value, write.Op == OpKind.Delete ? null : write.Value, write);
        }

        var readsOf = new Dictionary<Operation, List<Operation>>(ReferenceEqualityComparer.Instance);
        foreach (var read in valueReads)
        {
            claim(read.Version!.Value, read.Value, read);
            if (!writers.TryGetValue(read.Value!, out var candidates))
            {
                Report(refused.Contains(read.Value!) ? ViolationKind.FailedWriteVisible : ViolationKind.PhantomValue,
                    refused.Contains(read.Value!) ? $"{Describe(read)} saw a value whose write was refused" : $"{Describe(read)} saw a value no write produced");
            }
            else if (candidates.Count == 1)
            {
                // A value written twice identifies no single write: it pins nothing (values should be unique).
                if (!readsOf.TryGetValue(candidates[0], out var reads))
                {
                    readsOf[candidates[0]] = reads = [];
                }

                reads.Add(read);
            }
        }

        foreach (var (version, list) in claims.OrderBy(c => c.Key))
        {
            var acknowledged = list.Where(c => c.Source.IsWrite).ToList();
            if (acknowledged.Count > 1)
            {
                Report(ViolationKind.DuplicateVersion, $"version {version} acknowledged to {acknowledged.Count} writes: {string.Join(", ", acknowledged.Select(c => Describe(c.Source)))}");
            }
            else if (list.Select(c => c.Content).Distinct(StringComparer.Ordinal).Count() > 1)
            {
                var contents = list.GroupBy(c => c.Content, StringComparer.Ordinal).Select(g => $"{Show(g.Key)} per {Describe(g.First().Source)}");
                Report(ViolationKind.WrongValueForVersion, $"version {version} holds two things: {string.Join("; ", contents)}");
            }
        }

        var pinned = new Dictionary<Operation, long>(ReferenceEqualityComparer.Instance);
        foreach (var (writer, reads) in readsOf)
        {
            var versions = reads.Select(r => r.Version!.Value).Concat(writer.Result == OpResult.Ok ? [writer.Version!.Value] : []).Distinct().Order().ToList();
            if (versions.Count > 1)
            {
                Report(ViolationKind.ValueAtTwoVersions,
                    $"'{writer.Value}' of {Describe(writer)} is at versions {string.Join(", ", versions)}, read by {string.Join(", ", reads.Take(Listed).Select(Describe))}: a write is applied once, at one version");
            }

            if (writer.Result == OpResult.Info)
            {
                pinned[writer] = versions[0];
            }
        }

        return pinned;
    }

    private static string? ConditionBroken(Operation write, long version, Func<long, bool> absentBefore, HashSet<long> tombstones) => write switch
    {
        { Op: OpKind.Put or OpKind.Cas, ExpectedVersion: 0 } when !absentBefore(version) =>
            $"created the key at version {version}, but a create-only write lands at 1 or right after a delete",
        { ExpectedVersion: { } e } when e > 0 && version - 1 != e => $"expected version {e} but got {version}",
        { Op: OpKind.Delete } when version == 1 || tombstones.Contains(version - 1) => $"deleted the key at version {version}, where it was absent",
        _ => null,
    };

    /// <summary>The versions up to <paramref name="highest"/> nobody wrote for sure; none when more than <paramref name="fillers"/> (reported).</summary>
    private List<long> FindGaps(HashSet<long> explained, long highest, int fillers)
    {
        // Every explained version is in 1..highest, so the gaps are counted without walking a huge range.
        var count = highest - explained.Count;
        if (count > fillers)
        {
            Report(ViolationKind.UnexplainedVersion,
                $"{count} of the versions up to {highest} were neither acknowledged nor seen as an unknown write's value, more than the {fillers} unknown writes nobody saw could have written");
            return [];
        }

        var gaps = new List<long>();
        var previous = 0L;
        foreach (var version in explained.Order().Append(highest + 1))
        {
            for (var gap = previous + 1; gap < version; gap++)
            {
                gaps.Add(gap);
            }

            previous = version;
        }

        return gaps;
    }

    /// <summary>
    /// Sweeps the operations by start, folding those that completed before each start into a floor. Returns the
    /// completed operations by end, each at its final version, for <see cref="MatchGaps"/>.
    /// </summary>
    private List<Timed> CheckRealTime(List<Operation> okWrites, Dictionary<Operation, long> pinned, List<Operation> valueReads,
        List<Operation> notFoundReads, List<(long Version, long Since)> absences)
    {
        var timed = okWrites.Select(w => new Timed(w, w.Version!.Value, pinned: false))
            .Concat(pinned.Select(p => new Timed(p.Key, p.Value, pinned: true)))
            .Concat(valueReads.Select(r => new Timed(r, r.Version!.Value, pinned: false)))
            .Concat(notFoundReads.Select(r => new Timed(r, 0, pinned: false)))
            .OrderBy(t => t.Op.Start).ToList();
        // A read of nothing gets its version when it starts, before it can complete before anything else starts.
        var completed = timed.Where(t => !t.Pinned).OrderBy(t => t.Op.End).ToList();
        var next = 0;
        Timed? newest = null;
        foreach (var item in timed)
        {
            while (next < completed.Count && completed[next].Op.End < item.Op.Start)
            {
                if (newest is null || completed[next].Version > newest.Version)
                {
                    newest = completed[next];
                }

                next++;
            }

            var floor = newest?.Version ?? 0;
            var op = item.Op;
            if (op.IsWrite && newest is not null && item.Version <= floor)
            {
                Report(ViolationKind.Reordered, item.Pinned
                    ? $"{Describe(op)} was seen at version {item.Version}, but began after {Describe(newest.Op)} (version {floor}) had ended"
                    : $"{Describe(op)} got version {item.Version}, not newer than {floor} of {Describe(newest.Op)}, which ended before it began");
            }
            else if (op is { Op: OpKind.Get, NotFound: false } && item.Version < floor)
            {
                Report(ViolationKind.StaleRead, $"{Describe(op)} saw version {item.Version} after {Describe(newest!.Op)} (version {floor}) had completed");
            }
            else if (op is { Op: OpKind.Get, NotFound: true })
            {
                var index = absences.BinarySearch((floor, long.MinValue));
                index = index < 0 ? ~index : index;
                while (index < absences.Count && absences[index].Since >= op.End)
                {
                    index++;
                }

                index = index < absences.Count ? index : -1;
                if (index >= 0)
                {
                    item.Version = absences[index].Version;
                }
                else
                {
                    Report(ViolationKind.LostWrite,
                        $"{Describe(op)} saw nothing after {Describe(newest!.Op)} (version {floor}) had completed, and no delete at or above version {floor} began before it ended");
                    item.Version = floor;
                }
            }
        }

        return completed;
    }

    /// <summary>Fills the gaps with the unknown writes nobody saw, at most one gap each (Kuhn's augmenting paths).</summary>
    private void MatchGaps(List<long> gaps, List<Operation> pool, List<Timed> completed, Func<long, bool> absentBefore, HashSet<long> tombstones)
    {
        var ends = completed.Select(c => c.Op.End).ToArray();
        var highestSoFar = new long[completed.Count];
        for (var i = 0; i < completed.Count; i++)
        {
            highestSoFar[i] = Math.Max(i == 0 ? 0 : highestSoFar[i - 1], completed[i].Version);
        }

        // What had completed before each unknown write began: it cannot have been written at or below that.
        var floors = pool.Select(w =>
        {
            var before = LowerBound(ends, w.Start);
            return before == 0 ? 0 : highestSoFar[before - 1];
        }).ToArray();

        bool canFill(int writer, long gap)
        {
            var w = pool[writer];
            if (gap <= floors[writer])
            {
                return false;
            }

            return w switch
            {
                { Op: OpKind.Delete } => gap > 1 && !tombstones.Contains(gap - 1) && (w.ExpectedVersion is not { } e || gap - 1 == e),
                { ExpectedVersion: 0 } => absentBefore(gap),
                { ExpectedVersion: { } e } => gap - 1 == e,
                _ => true,
            };
        }

        var gapOf = new int[pool.Count];
        Array.Fill(gapOf, -1);
        var filled = new bool[gaps.Count];
        // A greedy pass first, conditional writes (fewer choices) before unconditional ones; augmenting paths only
        // for what it leaves, so a long history with many unknown writes takes milliseconds, not seconds.
        var byChoices = Enumerable.Range(0, pool.Count).OrderBy(w => pool[w].ExpectedVersion is null).ToArray();
        for (var g = 0; g < gaps.Count; g++)
        {
            foreach (var w in byChoices)
            {
                if (gapOf[w] < 0 && canFill(w, gaps[g]))
                {
                    (gapOf[w], filled[g]) = (g, true);
                    break;
                }
            }
        }

        var unfilled = new List<long>();
        for (var g = 0; g < gaps.Count; g++)
        {
            if (!filled[g] && !augment(g, new bool[pool.Count]))
            {
                unfilled.Add(gaps[g]);
            }
        }

        if (unfilled.Count > 0)
        {
            Report(ViolationKind.UnexplainedVersion,
                $"version{(unfilled.Count > 1 ? "s" : "")} {string.Join(", ", unfilled.Take(Listed))}{(unfilled.Count > Listed ? ", …" : "")} neither acknowledged nor seen, and none of the {pool.Count} unknown writes nobody saw could have written {(unfilled.Count > 1 ? "them" : "it")} "
                + "(each writes one version at most, a compare-and-set only expected + 1, a create-only write only 1 or after a delete, none at or below a version that completed before it began)");
        }

        bool augment(int g, bool[] visited)
        {
            for (var w = 0; w < pool.Count; w++)
            {
                if (visited[w] || !canFill(w, gaps[g]))
                {
                    continue;
                }

                visited[w] = true;
                if (gapOf[w] < 0 || augment(gapOf[w], visited))
                {
                    gapOf[w] = g;
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>How many of the sorted <paramref name="ends"/> are below <paramref name="start"/>.</summary>
    private static int LowerBound(long[] ends, long start)
    {
        int low = 0, high = ends.Length;
        while (low < high)
        {
            var mid = (low + high) / 2;
            if (ends[mid] < start)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return low;
    }

    private static string Show(string? content) => content is null ? "a tombstone" : $"'{content}'";

    private void Report(ViolationKind kind, string detail) => violations.Add(new(kind, key, detail));
}
