using System.Text.Json;
using ActorHa.Domain;

namespace ActorHa.Client;

/// <summary>
/// Which node's HTTP API owns each key's partition, from one /v1/cluster answer. Any node serves any key (it
/// forwards to the owner over Akka remoting), so a route is only an optimisation: a stale one costs a hop, never
/// a wrong answer. Take a fresh snapshot every few seconds, or after errors, to follow partitions that moved.
/// </summary>
public sealed class OwnerRoutes
{
    private readonly PartitionMap _map;
    private readonly string?[] _ownerUrls;

    private OwnerRoutes(PartitionMap map, string?[] ownerUrls)
    {
        _map = map;
        _ownerUrls = ownerUrls;
    }

    /// <summary>Partitions whose owner and its HTTP URL are known.</summary>
    public int Routed => _ownerUrls.Count(u => u is not null);

    public int PartitionCount => _map.PartitionCount;

    public static OwnerRoutes From(JsonDocument cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var partitions = cluster.RootElement.GetProperty("partitions").EnumerateArray().ToList();
        var urls = new string?[partitions.Count];
        foreach (var p in partitions)
        {
            var index = p.GetProperty("partition").GetInt32();
            urls[index] = p.TryGetProperty("ownerHttpUrl", out var url) && url.ValueKind == JsonValueKind.String ? url.GetString() : null;
        }

        return new OwnerRoutes(new PartitionMap(partitions.Count), urls);
    }

    public static async Task<OwnerRoutes> FetchAsync(ActorHaClient client, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        using var cluster = await client.ClusterAsync(ct).ConfigureAwait(false);
        return From(cluster);
    }

    /// <summary>The base URL of the node that owns <paramref name="key"/>'s partition; null when unknown (send it anywhere).</summary>
    public string? UrlFor(string key) => _ownerUrls[_map.For(key).Value];
}
