using ActorHa.Domain;

namespace ActorHa.Cluster.Leases;

/// <summary>
/// This node's acquisitions and releases of partitions in the <see cref="IOwnershipStore"/>: run one at a time per
/// partition, in the order they were asked for, on the thread pool (the store's calls block). It also remembers,
/// per partition, every lease id under which this node may hold the row: an acquisition counts from the moment it
/// starts, because it may commit even when its answer never arrives.
/// <para>
/// Why one queue per partition rather than a task per call: a partition's supervisor can be stopped at any moment
/// (a hand-off, or sharding's <c>handoff-timeout</c> stopping it by force) and a successor for the same partition
/// can start on this node right after. With independent tasks, a release that outlived its supervisor could run
/// after the successor's acquisition and free the row under the successor's feet, and an acquisition still in
/// flight could commit after the release meant to undo it and leave the row held by this live node for as long as
/// it lives. In one queue a release always follows the acquisitions asked before it and precedes those asked
/// after it, so a supervisor may release whenever it stops, even from <c>PostStop</c>.
/// </para>
/// </summary>
public sealed class PartitionClaims(IOwnershipStore store)
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(5);

    private readonly Dictionary<PartitionId, Claim> _claims = [];

    /// <summary>Tries to take <paramref name="partition"/> under the lease id <paramref name="node"/>, after every earlier call for it.</summary>
    public Task<AcquireResult> AcquireAsync(PartitionId partition, string node)
    {
        var claim = ClaimOf(partition);
        return claim.Enqueue(_ =>
        {
            claim.MayHold(node);
            return store.TryAcquire(partition, node);
        }, acquisition: true);
    }

    /// <summary>
    /// Gives <paramref name="partition"/> up under every lease id an earlier acquisition may have taken it with (a
    /// release only clears a row still held under that id, so an old id never frees another node's row). A release
    /// that fails (the store unreachable for a moment) is tried again in the background, with growing pauses, until
    /// it succeeds or this node acquires the partition again: otherwise a node that gave the partition up but lives on
    /// (a rebalance) would keep its row, renew its lease, and keep the partition's next owner waiting for as long as
    /// it lives. The task completes after the first try.
    /// </summary>
    public Task ReleaseAsync(PartitionId partition) => ReleaseAsync(partition, ClaimOf(partition), retryAfter: null, askedAfter: null);

    /// <param name="askedAfter">For a retry: how many acquisitions had been asked for when the first try was asked for.</param>
    private Task ReleaseAsync(PartitionId partition, Claim claim, TimeSpan? retryAfter, long? askedAfter)
    {
        return claim.Enqueue(acquisitionsBefore =>
        {
            // A retry must not run once an acquisition asked for after the first try has run: it may hold the row now
            // (under the same lease id), and releasing it would let another node take a partition running here.
            var firstAskedAfter = askedAfter ?? acquisitionsBefore;
            if (askedAfter is not null && claim.Acquisitions != firstAskedAfter)
            {
                return true;
            }

            var failed = false;
            foreach (var node in claim.TakeAll())
            {
                try
                {
                    store.Release(partition, node);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    claim.MayHold(node);
                    failed = true;
                }
            }

            if (failed)
            {
                var pause = retryAfter ?? FirstRetry;
                _ = Task.Delay(pause).ContinueWith(
                    _ => ReleaseAsync(partition, claim, TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, MaxRetry.Ticks)), firstAskedAfter),
                    CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }

            return true;
        }, acquisition: false);
    }

    private Claim ClaimOf(PartitionId partition)
    {
        lock (_claims)
        {
            if (!_claims.TryGetValue(partition, out var claim))
            {
                claim = new Claim();
                _claims.Add(partition, claim);
            }

            return claim;
        }
    }

    private sealed class Claim
    {
        private readonly Lock _gate = new();
        private readonly HashSet<string> _mayHold = [];
        private Task _tail = Task.CompletedTask;
        private long _acquisitions;

        /// <summary>How many acquisitions have been asked for so far.</summary>
        public long Acquisitions
        {
            get
            {
                lock (_gate)
                {
                    return _acquisitions;
                }
            }
        }

        /// <param name="call">Given how many acquisitions had been asked for before this call was.</param>
        public Task<T> Enqueue<T>(Func<long, T> call, bool acquisition)
        {
            lock (_gate)
            {
                var before = _acquisitions;
                if (acquisition)
                {
                    _acquisitions++;
                }

                // Runs whether the previous call failed or not; its failure belongs to its own caller.
                var next = _tail.ContinueWith(_ => call(before), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
                _tail = next;
                return next;
            }
        }

        public void MayHold(string node)
        {
            lock (_gate)
            {
                _mayHold.Add(node);
            }
        }

        public string[] TakeAll()
        {
            lock (_gate)
            {
                var all = _mayHold.ToArray();
                _mayHold.Clear();
                return all;
            }
        }
    }
}
