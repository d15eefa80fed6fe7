namespace ActorHa.Checker.Specs;

/// <summary>Operations on one key "k", written the way the specs read.</summary>
internal static class Histories
{
    public static Operation Put(int p, string value, long start, long end, long version) => new(p, OpKind.Put, "k", value, start, end, OpResult.Ok, version);

    public static Operation PutInfo(int p, string value, long start, long end) => new(p, OpKind.Put, "k", value, start, end, OpResult.Info);

    public static Operation Cas(int p, string value, long start, long end, long expected, long version) => new(p, OpKind.Cas, "k", value, start, end, OpResult.Ok, version, expected);

    public static Operation CasInfo(int p, string value, long start, long end, long expected) => new(p, OpKind.Cas, "k", value, start, end, OpResult.Info, null, expected);

    public static Operation CasFail(int p, string value, long start, long end, long expected) => new(p, OpKind.Cas, "k", value, start, end, OpResult.Fail, null, expected);

    public static Operation Get(int p, string? value, long start, long end, long? version) =>
        new(p, OpKind.Get, "k", value, start, end, OpResult.Ok, version, NotFound: value is null);

    public static Operation Delete(int p, long start, long end, long version, long? expected = null) => new(p, OpKind.Delete, "k", null, start, end, OpResult.Ok, version, expected);

    public static Operation DeleteInfo(int p, long start, long end, long? expected = null) => new(p, OpKind.Delete, "k", null, start, end, OpResult.Info, null, expected);

    public static IReadOnlyList<ViolationKind> Kinds(params Operation[] history) => HistoryChecker.Check(history).Violations.Select(v => v.Kind).ToList();
}
