using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Hosting;

namespace ActorHa.Cluster;

/// <summary>
/// The one way into the partitions for the HTTP layer: asks through the local shard region (which
/// forwards to whichever node owns the partition) and turns a timeout into a retryable reply.
/// </summary>
public sealed class PartitionClient(IRequiredActor<PartitionRegion> region, ActorHaSettings settings, PartitionMap map)
{
    public PartitionMap Map { get; } = map;

    public async Task<IPartitionReply> AskAsync(IPartitionMessage message, CancellationToken cancellationToken = default)
    {
        try
        {
            return await region.ActorRef.Ask<IPartitionReply>(message, settings.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            return new Replies.Unavailable($"no answer from the partition within {settings.RequestTimeout.TotalSeconds:0.#} s", TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>Live keys across all partitions in ordinal order: each partition returns its first Limit, then merged.</summary>
    public async Task<IPartitionReply> ListAsync(string prefix, string? after, int limit, CancellationToken cancellationToken = default)
    {
        var pages = await Task.WhenAll(Map.All.Select(p => AskAsync(new Queries.ListKeys(p, prefix, after, limit), cancellationToken))).ConfigureAwait(false);
        if (pages.OfType<Replies.Unavailable>().FirstOrDefault() is { } unavailable)
        {
            return unavailable;
        }

        var merged = pages.Cast<Replies.KeyPage>()
            .SelectMany(p => p.Keys)
            .OrderBy(k => k.Key, StringComparer.Ordinal)
            .Take(limit)
            .ToList();
        return new Replies.KeyPage(new PartitionId(-1), merged);
    }
}
