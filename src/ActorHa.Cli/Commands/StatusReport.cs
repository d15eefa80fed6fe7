using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha status` for people: members, then which node owns which partitions, from one /v1/cluster answer.</summary>
public static class StatusReport
{
    public static string Format(JsonElement cluster)
    {
        var text = new StringBuilder();
        var members = cluster.GetProperty("members").EnumerateArray().ToList();
        var partitions = cluster.GetProperty("partitions").EnumerateArray().ToList();
        text.AppendLine(CultureInfo.InvariantCulture, $"answered by {cluster.GetProperty("self").GetString()}");
        text.AppendLine(CultureInfo.InvariantCulture, $"{"member",-40} {"http",-26} {"status",-8} {"reachable",-9} {"up since",-20} notes");
        foreach (var m in members)
        {
            var notes = new List<string>();
            if (Flag(m, "isOldest"))
            {
                notes.Add("oldest (hosts the shard coordinator)");
            }

            if (Flag(m, "isLeader"))
            {
                notes.Add("leader");
            }

            if (Flag(m, "isSelf"))
            {
                notes.Add("answered");
            }

            var upSince = m.TryGetProperty("upSince", out var u) && u.ValueKind == JsonValueKind.String ? u.GetDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-";
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{m.GetProperty("address").GetString(),-40} {Str(m, "httpUrl"),-26} {m.GetProperty("status").GetString(),-8} {(Flag(m, "reachable") ? "yes" : "NO"),-9} {upSince,-20} {string.Join(", ", notes)}");
            text.AppendLine(line.TrimEnd());
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"partitions: {partitions.Count}");
        foreach (var owner in partitions.GroupBy(p => Str(p, "ownerHttpUrl") is "-" ? Str(p, "state") : Str(p, "ownerHttpUrl")).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ids = owner.Select(p => p.GetProperty("partition").GetInt32()).Order().ToList();
            text.AppendLine(CultureInfo.InvariantCulture, $"  {owner.Key,-26} {ids.Count,3}  {string.Join(' ', ids)}");
        }

        // Owned and placed like any other, so the lines above do not show it: these refuse every request.
        var unrecoverable = partitions.Where(p => Str(p, "state") == "unrecoverable").ToList();
        if (unrecoverable.Count > 0)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"UNRECOVERABLE partitions: {unrecoverable.Count} (their keys get 503 partition-unrecoverable; see docs/production.md)");
            foreach (var p in unrecoverable)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"  {p.GetProperty("partition").GetInt32(),3} on {Str(p, "ownerHttpUrl")}: {Str(p, "problem")}");
            }
        }

        return text.ToString().TrimEnd();
    }

    private static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    private static string Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "-";
}
