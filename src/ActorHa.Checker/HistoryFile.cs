using System.Text.Json;

namespace ActorHa.Checker;

/// <summary>Histories as JSON lines, one operation per line.</summary>
public static class HistoryFile
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string ToLine(Operation op) => JsonSerializer.Serialize(op, Json);

    public static Operation FromLine(string line) =>
        JsonSerializer.Deserialize<Operation>(line, Json) ?? throw new FormatException($"Not an operation: {line}");

    public static IEnumerable<Operation> Read(string path) =>
        File.ReadLines(path).Where(l => l.Length > 0).Select(FromLine);

    public static void Write(string path, IEnumerable<Operation> history) =>
        File.WriteAllLines(path, history.Select(ToLine));
}
