namespace ActorHa.Checker.Specs;

/// <summary>
/// Random histories of one key that are linearizable by construction: every operation gets a moment inside its
/// interval (an unknown write's moment may also come after its end, or never), and a model of the store applied
/// in that order decides each outcome.
/// </summary>
internal static class LinearizableHistory
{
    public static List<Operation> Generate(Random random, int processes, int operations, double unknownShare = 0.1)
    {
        var planned = new List<(int Process, long Start, long End, long Moment, OpKind Kind, double Roll)>();
        var clocks = new long[processes];
        for (var i = 0; i < operations; i++)
        {
            var p = random.Next(processes);
            var start = clocks[p] + random.Next(1, 50);
            var end = start + random.Next(1, 200);
            clocks[p] = end;
            var kind = random.NextDouble() switch { < 0.3 => OpKind.Put, < 0.55 => OpKind.Cas, < 0.65 => OpKind.Delete, _ => OpKind.Get };
            planned.Add((p, start, end, random.NextInt64(start, end + 1), kind, random.NextDouble()));
        }

        // Unknown writes: recorded Info, applied at their moment, at a moment after their end, or never.
        var unknown = planned.Select(o => o.Kind != OpKind.Get && random.NextDouble() < unknownShare).ToList();
        var moments = planned.Select((o, i) => unknown[i] && random.NextDouble() < 0.3 ? o.End + random.Next(1, 500) : o.Moment).ToList();
        var applied = planned.Select((_, i) => !unknown[i] || random.NextDouble() < 0.6).ToList();

        var history = new List<Operation>();
        long version = 0;
        var live = false;
        string? value = null;
        foreach (var i in Enumerable.Range(0, planned.Count).OrderBy(i => moments[i]).ThenBy(i => i))
        {
            var (p, start, end, _, kind, roll) = planned[i];
            var name = $"p{p}-{i}";
            Operation op;
            switch (kind)
            {
                case OpKind.Get:
                    op = live
                        ? new(p, OpKind.Get, "k", value, start, end, OpResult.Ok, version)
                        : new(p, OpKind.Get, "k", null, start, end, OpResult.Ok, NotFound: true);
                    break;
                case OpKind.Delete:
                {
                    long? expected = roll < 0.5 ? null : roll < 0.8 ? version : Math.Max(0, version - 1);
                    var succeeds = live && (expected is null || expected == version);
                    op = Write(OpKind.Delete, null, expected, succeeds);
                    if (succeeds && applied[i])
                    {
                        (version, live, value) = (version + 1, false, null);
                    }

                    break;
                }

                default:
                {
                    long? expected = kind == OpKind.Put ? null : roll < 0.6 ? (live ? version : 0) : roll < 0.8 ? 0 : Math.Max(1, version - 1);
                    var succeeds = expected is null || (expected == 0 ? !live : live && expected == version);
                    op = Write(kind, name, expected, succeeds);
                    if (succeeds && applied[i])
                    {
                        (version, live, value) = (version + 1, true, name);
                    }

                    break;
                }
            }

            history.Add(op);

            Operation Write(OpKind writeKind, string? written, long? expected, bool succeeds) =>
                unknown[i] ? new(p, writeKind, "k", written, start, end, OpResult.Info, null, expected)
                : succeeds ? new(p, writeKind, "k", written, start, end, OpResult.Ok, version + 1, expected)
                : new(p, writeKind, "k", written, start, end, OpResult.Fail, null, expected);
        }

        return history;
    }
}
