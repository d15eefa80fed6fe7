using ActorHa.Cluster.Leases;
using ActorHa.Domain;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Leases;

/// <summary>A node's acquisitions and releases of one partition, on the real SQLite ownership store.</summary>
public sealed class PartitionClaimsSpecs(ITestOutputHelper output) : PersistenceSpecBase(output)
{
    private static readonly PartitionId P = new(11);

    [Fact]
    public async Task A_release_that_fails_is_tried_again_until_the_row_is_free_for_the_next_owner()
    {
        // arrange: this node holds the partition; the store fails the next two releases (unreachable for a moment)
        var store = new FailingReleases(Ownership, failures: 2);
        var claims = new PartitionClaims(store);
        Ownership.RenewNode("here", TimeSpan.FromSeconds(30));
        Assert.True((await claims.AcquireAsync(P, "here")).Acquired);

        // act: given up (a rebalance moved it), while this node lives on and keeps its lease
        await claims.ReleaseAsync(P);

        // assert: the next owner gets it without waiting for this node's lease
        Ownership.RenewNode("next-owner", TimeSpan.FromSeconds(30));
        AwaitAssert(() => Assert.True(Ownership.TryAcquire(P, "next-owner").Acquired, "the row is still held by the live node that gave it up"), TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(100));
        Assert.Equal(3, store.Releases);
    }

    [Fact]
    public async Task A_failed_release_is_not_tried_again_once_this_node_has_acquired_the_partition_again()
    {
        // arrange: a release that fails once, then the partition taken again by this node before the retry is due
        var store = new FailingReleases(Ownership, failures: 1);
        var claims = new PartitionClaims(store);
        Ownership.RenewNode("here", TimeSpan.FromSeconds(30));
        Assert.True((await claims.AcquireAsync(P, "here")).Acquired);
        await claims.ReleaseAsync(P);
        Assert.True((await claims.AcquireAsync(P, "here")).Acquired);

        // act: wait well past the retry
        await Task.Delay(TimeSpan.FromSeconds(1));

        // assert: the row the second acquisition holds was left alone
        Ownership.RenewNode("other", TimeSpan.FromSeconds(30));
        Assert.False(Ownership.TryAcquire(P, "other").Acquired, "a retried release freed the row of the partition running here again");
        Assert.Equal(1, store.Releases);
    }

    [Fact]
    public async Task A_release_asked_for_while_an_acquisition_runs_runs_after_it()
    {
        // arrange: an acquisition held inside the store
        var store = new FailingReleases(Ownership, failures: 0) { HoldAcquisitions = true };
        var claims = new PartitionClaims(store);
        Ownership.RenewNode("here", TimeSpan.FromSeconds(30));
        var acquisition = claims.AcquireAsync(P, "here");
        Assert.True(store.AcquisitionStarted.Wait(TimeSpan.FromSeconds(5)));

        // act
        var release = claims.ReleaseAsync(P);
        await Task.Delay(300);
        var releasedEarly = release.IsCompleted;
        store.LetAcquisitionsThrough.Set();
        await Task.WhenAll(acquisition, release);

        // assert: the release waited for the acquisition, then undid it
        Assert.False(releasedEarly, "the release ran before the acquisition it was asked for after");
        Assert.True((await acquisition).Acquired);
        Ownership.RenewNode("next-owner", TimeSpan.FromSeconds(30));
        Assert.True(Ownership.TryAcquire(P, "next-owner").Acquired, "the acquisition committed after the release and kept the row");
    }

    /// <summary>The real store, with its first releases failing and, optionally, acquisitions held at the door.</summary>
    private sealed class FailingReleases(IOwnershipStore inner, int failures) : IOwnershipStore
    {
        private int _releases;

        public bool HoldAcquisitions { get; init; }

        public ManualResetEventSlim AcquisitionStarted { get; } = new();

        public ManualResetEventSlim LetAcquisitionsThrough { get; } = new();

        public int Releases => Volatile.Read(ref _releases);

        public void Initialize() => inner.Initialize();

        public bool RenewNode(string node, TimeSpan ttl) => inner.RenewNode(node, ttl);

        public AcquireResult TryAcquire(PartitionId partition, string node)
        {
            AcquisitionStarted.Set();
            if (HoldAcquisitions)
            {
                LetAcquisitionsThrough.Wait(TimeSpan.FromSeconds(30));
            }

            return inner.TryAcquire(partition, node);
        }

        public void Release(PartitionId partition, string node)
        {
            if (Interlocked.Increment(ref _releases) <= failures)
            {
                throw new TimeoutException("the store did not answer (injected)");
            }

            inner.Release(partition, node);
        }

        public void ReleaseNode(string node) => inner.ReleaseNode(node);

        public AcquireResult TryTakeResolverLease(string name, string node, string? takeOverFrom = null) => inner.TryTakeResolverLease(name, node, takeOverFrom);

        public void ReleaseResolverLease(string name, string node) => inner.ReleaseResolverLease(name, node);

        public void ReportCluster(string node, string cluster) => inner.ReportCluster(node, cluster);

        public IReadOnlyList<(string Node, string? Cluster)> LiveNodes() => inner.LiveNodes();
    }
}
