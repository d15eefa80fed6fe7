using ActorHa.Cluster.Forwarding;
using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Membership;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Hosting;

namespace ActorHa.Cluster;

/// <summary>
/// The one way into the partitions for the HTTP layer: asks through the local shard region (which
/// forwards to whichever node owns the partition). A message can be lost while its partition moves
/// (sharding drops what reached a region mid hand-off; a crashed owner answers nothing), so each
/// request is retried with short attempts until <see cref="ActorHaSettings.RequestTimeout"/>. Writes carry
/// a request id and partitions apply a request id once, so a retried write is answered, never applied twice.
/// An attempt also ends early when a member is removed: a request that went to that member is lost, and
/// the region now knows where to send it instead.
/// A request for a partition running on this node goes to it directly (<see cref="LocalPartitions"/>).
/// Once this node shuts down, no new attempt is made: a request not sent yet is answered "unavailable" at once,
/// so that its client retries on another node instead of waiting out the timeout against a closing actor system.
/// </summary>
public sealed class PartitionClient(IRequiredActor<PartitionRegion> region, ActorHaSettings settings, PartitionMap map, MemberRemovals removals, LocalPartitions local, RemoteOwners owners, IRequiredActor<PartitionForwarderKey> forwarder, NodeExit exit, NodeLease? lease = null)
{
    private static readonly TimeSpan RetryPause = TimeSpan.FromMilliseconds(50);

    // Time for the region to drop the removed member's shard homes and ask the coordinator for new ones.
    private static readonly TimeSpan RehomePause = TimeSpan.FromMilliseconds(100);

    public PartitionMap Map { get; } = map;

    public async Task<IPartitionReply> AskAsync(IPartitionMessage message, CancellationToken cancellationToken = default)
    {
        message = message switch
        {
            Commands.Put { RequestId: null } put => put with { RequestId = NodeRequestIds.Next() },
            Commands.Delete { RequestId: null } delete => delete with { RequestId = NodeRequestIds.Next() },
            _ => message,
        };

        PartitionId? partition = message switch
        {
            IKeyed keyed => Map.For(keyed.Key),
            Queries.ListKeys list => list.Partition,
            _ => null,
        };
        var deadline = DateTime.UtcNow + settings.RequestTimeout;
        Replies.Unavailable? last = null;
        var mayForward = true;
        while (true)
        {
            if (exit.ShuttingDown)
            {
                return last is null
                    ? new Replies.Unavailable("this node is shutting down and did not send the request: send it to another node", TimeSpan.Zero)
                    : new Replies.Unavailable($"this node is shutting down; its last attempt ended: {last.Reason}", TimeSpan.Zero);
            }

            if (partition is { } here && (owners.For(here) is null || last is not null) && lease?.NotCurrentFor is { } lapse && lapse >= settings.Lease.Ttl)
            {
                // Not known to run on another node, so it runs here, or is to start here, or its owner is unknown: none of
                // which can answer until the store confirms this node's lease again (a partition here cannot even start
                // without it), and sharding does not move it while this node is a member. Retrying until the request
                // timeout would only hold the client during a store outage; after a TTL without a renewal, say so now.
                // Shorter blips are retried as before. A partition another node announced is still forwarded there once
                // (its node's lease is its own); if that fails too, the store is most likely out for everyone, and this
                // node, not ready, is not the one to keep the client waiting.
                return new Replies.Unavailable(
                    $"this node's lease has not been current for {lapse.TotalMilliseconds:0} ms (its store does not confirm renewals), so partition {here} cannot be served through this node now; /healthz/ready answers 503 meanwhile",
                    TimeSpan.FromSeconds(1));
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero)
            {
                return last ?? new Replies.Unavailable($"no answer from the partition within {settings.RequestTimeout.TotalSeconds:0.#} s", TimeSpan.FromSeconds(1));
            }

            var attempt = remaining < settings.AttemptTimeout ? remaining : settings.AttemptTimeout;
            var removal = removals.Next;
            try
            {
                var forwarded = false;
                Task<IPartitionReply> ask;
                if (mayForward && partition is { } owned && local.For(owned) is null && owners.For(owned) is { } peer)
                {
                    // First attempt for a partition on another node: through the forwarders, batched with others.
                    var reply = new TaskCompletionSource<IPartitionReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                    forwarder.ActorRef.Tell(new PartitionForwarder.Forward(peer, message, reply));
                    // The forwarder fails what gets no answer in time, unless it is gone itself (stopped during
                    // shutdown): bound the wait here too, and let the caller's cancellation end it.
                    ask = reply.Task.WaitAsync(attempt, cancellationToken);
                    forwarded = true;
                }
                else
                {
                    var target = (partition is { } p ? local.For(p) : null) ?? region.ActorRef;
                    ask = target.Ask<IPartitionReply>(message, attempt, cancellationToken);
                }

                // Any retry goes through the shard region, which knows where the partition is now.
                mayForward = false;
                if (await Task.WhenAny(ask, removal).ConfigureAwait(false) != ask)
                {
                    // Abandoned, not cancelled: a late answer is simply not awaited.
                    _ = ask.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                    await Task.Delay(RehomePause, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var answer = await ask.ConfigureAwait(false);
                if (answer is not Replies.Unavailable unavailable)
                {
                    return answer;
                }

                last = unavailable;
                if (forwarded)
                {
                    // Not delivered (partition not there, node gone, no answer in time): retry through the region now.
                    continue;
                }
            }
            catch (Exception e) when (e is AskTimeoutException or TimeoutException)
            {
                last = new Replies.Unavailable($"no answer from the partition within {settings.RequestTimeout.TotalSeconds:0.#} s", TimeSpan.FromSeconds(1));
            }

            await Task.Delay(RetryPause, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Live keys across all partitions in ordinal order: each partition returns its first Limit, then merged. The
    /// API asks for one key more than a page: that key exists only if another page follows.
    /// </summary>
    public async Task<IPartitionReply> ListAsync(string prefix, string? after, int limit, CancellationToken cancellationToken = default)
    {
        var pages = await Task.WhenAll(Map.All.Select(p => AskAsync(new Queries.ListKeys(p, prefix, after, limit), cancellationToken))).ConfigureAwait(false);
        // One partition that cannot answer fails the whole listing: a merged page without its keys would look complete.
        if ((pages.FirstOrDefault(p => p is Replies.Unrecoverable) ?? pages.OfType<Replies.Unavailable>().FirstOrDefault()) is { } failed)
        {
            return failed;
        }

        var merged = pages.Cast<Replies.KeyPage>()
            .SelectMany(p => p.Keys)
            .OrderBy(k => k.Key, StringComparer.Ordinal)
            .Take(limit)
            .ToList();
        return new Replies.KeyPage(new PartitionId(-1), merged);
    }
}
