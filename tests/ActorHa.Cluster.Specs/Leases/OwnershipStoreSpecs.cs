using ActorHa.Cluster.Leases;
using ActorHa.Domain;
using Npgsql;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Leases;

public sealed class SqliteOwnershipStoreSpecs(ITestOutputHelper output) : OwnershipStoreSpecs(output, StoreKind.Sqlite);

public sealed class PostgresOwnershipStoreSpecs(ITestOutputHelper output) : OwnershipStoreSpecs(output, StoreKind.Postgres)
{
    private static readonly PartitionId P = new(3);

    // PostgreSQL runs lease transactions of several nodes at once (SQLite's BEGIN IMMEDIATE runs them one at a
    // time), so these two hold one node's transaction open and let another's run into it.

    [Fact]
    public async Task An_acquisition_that_waited_for_another_one_sees_the_new_holder_and_takes_nothing()
    {
        Ownership.RenewNode("a", TimeSpan.FromMilliseconds(300));
        Ownership.TryAcquire(P, "a");
        Ownership.RenewNode("b", TimeSpan.FromSeconds(30));
        Ownership.RenewNode("c", TimeSpan.FromSeconds(30));
        Thread.Sleep(500);

        // b has locked the owner row to take the partition from a's expired lease when c tries; b commits while c waits.
        using var b = (NpgsqlConnection)OpenConnection();
        using var bTx = await b.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand($"SELECT node FROM actorha_partition_owner WHERE partition = {P.Value} FOR UPDATE", b, bTx))
        {
            await lockRow.ExecuteScalarAsync();
        }

        var c = Task.Run(() => Ownership.TryAcquire(P, "c"));
        await Task.Delay(500);
        var cWaited = !c.IsCompleted;
        var bHolds = PostgresOwnershipStore.Acquire(b, bTx, P, "b").Acquired;
        await bTx.CommitAsync();
        var cResult = await c.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(bHolds);
        Assert.True(cWaited, "c did not wait for b's acquisition");
        Assert.False(cResult.Acquired, $"c took the partition from b, whose lease is live (epoch {cResult.Epoch})");
        Assert.Equal("b", cResult.Holder);
    }

    [Fact]
    public async Task A_renewal_checked_before_expiry_and_committed_after_it_keeps_the_partition_from_a_takeover()
    {
        Ownership.RenewNode("a", TimeSpan.FromMilliseconds(600));
        Ownership.TryAcquire(P, "a");
        Ownership.RenewNode("c", TimeSpan.FromSeconds(30));

        // a's next renewal finds its lease alive and extends it, but its commit is late (a GC pause, a slow fsync).
        using var a = (NpgsqlConnection)OpenConnection();
        using var aTx = await a.BeginTransactionAsync();
        var renewed = PostgresOwnershipStore.ExtendLiveLease(a, aTx, "a", 30_000);
        Thread.Sleep(800);
        var c = Task.Run(() => Ownership.TryAcquire(P, "c"));
        await Task.Delay(500);
        await aTx.CommitAsync();
        var cResult = await c.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(renewed);
        Assert.False(cResult.Acquired, "c took the partition while a's renewal, which a counts as successful, was committing");
        Assert.Equal("a", cResult.Holder);
        Assert.True(Ownership.RenewNode("a", TimeSpan.FromSeconds(30)), "a's committed renewal was lost");
    }

    [Fact]
    public async Task A_transaction_a_frozen_node_left_open_is_ended_by_the_server_so_the_rows_it_locked_can_be_written()
    {
        // arrange: a node froze between its INSERT and its COMMIT (the transaction is open and idle)
        await using var frozen = (NpgsqlConnection)OpenConnection();
        var tx = await frozen.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO actorha_partition_owner (partition, node, epoch) VALUES (77, 'frozen', 1)", frozen, tx))
        {
            await insert.ExecuteNonQueryAsync();
        }

        // act: another node writes the same row, which waits for the frozen transaction
        Ownership.RenewNode("b", TimeSpan.FromSeconds(30));
        var started = System.Diagnostics.Stopwatch.StartNew();
        var acquired = await Task.Run(() => Ownership.TryAcquire(new PartitionId(77), "b")).WaitAsync(TimeSpan.FromSeconds(15));

        // assert: the server ended the idle transaction after its timeout, not when the frozen node woke up
        Assert.True(acquired.Acquired);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10));
        await Assert.ThrowsAnyAsync<Exception>(() => tx.CommitAsync());
    }

    [Fact]
    public async Task A_renewal_the_database_does_not_answer_gives_up_after_about_a_ttl_instead_of_holding_the_renew_thread()
    {
        // arrange: a's lease row is locked by a transaction that keeps running (a hung database, to the renewal)
        Ownership.RenewNode("a", TimeSpan.FromSeconds(30));
        await using var other = (NpgsqlConnection)OpenConnection();
        await using var tx = await other.BeginTransactionAsync();
        await using (var lockRow = new NpgsqlCommand("SELECT node FROM actorha_node_lease WHERE node = 'a' FOR UPDATE", other, tx))
        {
            await lockRow.ExecuteScalarAsync();
        }

        await using var busy = new NpgsqlCommand("SELECT pg_sleep(30)", other, tx);
        var holding = busy.ExecuteNonQueryAsync();

        // act
        var started = System.Diagnostics.Stopwatch.StartNew();
        var renewal = await Record.ExceptionAsync(() => Task.Run(() => Ownership.RenewNode("a", TimeSpan.FromSeconds(1))).WaitAsync(TimeSpan.FromSeconds(20)));

        // assert: it failed (so the renew loop goes on, and can log that the lease lapsed) within a few seconds (about
        // 2 s here: 1 s for the command, 1 s to cancel it), not when the lock was let go 30 s later
        Assert.NotNull(renewal);
        Assert.IsNotType<TimeoutException>(renewal);
        Assert.InRange(started.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(8));
        busy.Cancel();
        await Record.ExceptionAsync(() => holding);
    }

    [Fact]
    public void A_takeover_revokes_the_expired_lease_so_its_holder_can_never_renew_it()
    {
        Ownership.RenewNode("a", TimeSpan.FromMilliseconds(300));
        Ownership.TryAcquire(P, "a");
        Ownership.RenewNode("c", TimeSpan.FromSeconds(30));
        Thread.Sleep(500);

        var taken = Ownership.TryAcquire(P, "c");

        Assert.True(taken.Acquired);
        Assert.Equal(0, CountRows("SELECT expires_at FROM actorha_node_lease WHERE node = 'a'"));
        Assert.False(Ownership.RenewNode("a", TimeSpan.FromSeconds(30)));
    }
}

/// <summary>Node leases and partition ownership in the store; run once per store.</summary>
public abstract class OwnershipStoreSpecs(ITestOutputHelper output, StoreKind store) : PersistenceSpecBase(output, store)
{
    private static readonly PartitionId P = new(3);
    private static readonly TimeSpan Ttl = TimeSpan.FromMilliseconds(400);

    [Fact]
    public void A_free_partition_is_acquired_at_epoch_1_and_reacquired_by_its_owner_at_the_next_epoch()
    {
        Ownership.RenewNode("a", Ttl);

        var first = Ownership.TryAcquire(P, "a");
        var again = Ownership.TryAcquire(P, "a");

        Assert.Equal((true, 1L), (first.Acquired, first.Epoch));
        Assert.Equal((true, 2L), (again.Acquired, again.Epoch));
    }

    [Fact]
    public void Live_node_leases_are_listed_with_the_cluster_each_node_last_reported_and_expired_ones_are_not()
    {
        // arrange: three live nodes (one reported twice, one never), one whose lease has expired
        Ownership.RenewNode("a", TimeSpan.FromSeconds(30));
        Ownership.RenewNode("b", TimeSpan.FromSeconds(30));
        Ownership.RenewNode("c", TimeSpan.FromSeconds(30));
        Ownership.RenewNode("gone", TimeSpan.FromMilliseconds(50));
        Ownership.ReportCluster("a", "cluster-x");
        Ownership.ReportCluster("b", "cluster-y");
        Ownership.ReportCluster("b", "cluster-x");
        Ownership.ReportCluster("gone", "cluster-y");
        Thread.Sleep(200);

        // act
        var live = Ownership.LiveNodes().Where(n => !n.Node.StartsWith("spec-node", StringComparison.Ordinal)).OrderBy(n => n.Node, StringComparer.Ordinal).ToList();

        // assert
        Assert.Equal([("a", "cluster-x"), ("b", "cluster-x"), ("c", (string?)null)], live);
    }

    [Fact]
    public void A_partition_whose_holder_lease_is_alive_cannot_be_taken()
    {
        Ownership.RenewNode("a", TimeSpan.FromSeconds(10));
        Ownership.TryAcquire(P, "a");

        var attempt = Ownership.TryAcquire(P, "b");

        Assert.False(attempt.Acquired);
        Assert.Equal("a", attempt.Holder);
        Assert.InRange(attempt.RetryAfter, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_partition_whose_holder_lease_expired_is_taken_at_a_higher_epoch()
    {
        Ownership.RenewNode("a", Ttl);
        var held = Ownership.TryAcquire(P, "a");

        Thread.Sleep(Ttl + TimeSpan.FromMilliseconds(100));
        var taken = Ownership.TryAcquire(P, "b");

        Assert.True(taken.Acquired);
        Assert.Equal(held.Epoch + 1, taken.Epoch);
    }

    [Fact]
    public void An_expired_node_lease_can_never_be_renewed_again()
    {
        Assert.True(Ownership.RenewNode("a", Ttl));
        Assert.True(Ownership.RenewNode("a", Ttl));

        Thread.Sleep(Ttl + TimeSpan.FromMilliseconds(100));

        Assert.False(Ownership.RenewNode("a", Ttl));
        Assert.False(Ownership.RenewNode("a", Ttl));
    }

    [Fact]
    public void A_released_partition_or_node_lets_another_node_take_over_at_once()
    {
        Ownership.RenewNode("a", TimeSpan.FromSeconds(10));
        Ownership.RenewNode("b", TimeSpan.FromSeconds(10));
        Ownership.TryAcquire(P, "a");
        Ownership.TryAcquire(new PartitionId(4), "a");

        Ownership.Release(P, "a");
        var released = Ownership.TryAcquire(P, "b");
        var stillHeld = Ownership.TryAcquire(new PartitionId(4), "b");
        Ownership.ReleaseNode("a");
        var afterNodeRelease = Ownership.TryAcquire(new PartitionId(4), "b");

        Assert.True(released.Acquired);
        Assert.False(stillHeld.Acquired);
        Assert.True(afterNodeRelease.Acquired);
    }

    [Fact]
    public void Releasing_a_partition_someone_else_holds_changes_nothing()
    {
        Ownership.RenewNode("a", TimeSpan.FromSeconds(10));
        Ownership.TryAcquire(P, "a");

        Ownership.Release(P, "b");

        Assert.False(Ownership.TryAcquire(P, "b").Acquired);
    }

    [Fact]
    public void A_node_lease_stays_valid_while_renewed_and_lapses_before_the_store_frees_it()
    {
        var settings = new LeaseSettings { Ttl = TimeSpan.FromMilliseconds(600), RenewInterval = TimeSpan.FromMilliseconds(100), SafetyMargin = TimeSpan.FromMilliseconds(200) };
        var lease = NewLease("renewed", settings);
        Ownership.TryAcquire(P, lease.NodeId);

        Thread.Sleep(1000);
        var validWhileRenewed = lease.IsValid;
        lease.StopRenewing();
        var takenWhileRecentlyRenewed = Ownership.TryAcquire(P, "b").Acquired;

        Assert.True(validWhileRenewed);
        Assert.False(lease.IsValid);
        Assert.False(takenWhileRecentlyRenewed);
        AwaitCondition(() => Ownership.TryAcquire(P, "b").Acquired, TimeSpan.FromSeconds(2));
    }

    [Fact]
    public void A_node_lease_can_be_disposed_at_any_point_of_its_renew_loop_and_its_thread_ends()
    {
        // Renewing every millisecond keeps the renew thread cycling through its loop check, its wait and its store
        // call, so disposing after a random few hundred microseconds lands in each of them across the iterations. A
        // token source disposed under the thread used to throw on it, which ends the whole process.
        var settings = new LeaseSettings { Ttl = TimeSpan.FromSeconds(1), RenewInterval = TimeSpan.FromMilliseconds(1), SafetyMargin = TimeSpan.FromMilliseconds(250) };
        var random = new Random(42);
        for (var i = 0; i < 300; i++)
        {
            var lease = new NodeLease(Ownership, settings, Microsoft.Extensions.Logging.Abstractions.NullLogger<NodeLease>.Instance);
            lease.Start($"disposed-{i}");
            Thread.SpinWait(random.Next(0, 20_000));

            lease.Dispose();

            Assert.False(lease.IsValid);
            Assert.False(lease.IsRenewing, $"iteration {i}: the renew thread still runs after Dispose");
        }
    }

    [Fact]
    public void The_resolver_lease_is_held_while_its_holders_node_lease_lives_and_only_its_holder_can_release_it()
    {
        // arrange: a holds the resolver's lease under a short node lease; b and c have long ones
        Ownership.RenewNode("a", Ttl);
        Ownership.RenewNode("b", TimeSpan.FromSeconds(10));
        Ownership.RenewNode("c", TimeSpan.FromSeconds(10));
        var taken = Ownership.TryTakeResolverLease("sbr", "a");

        // act
        var whileAlive = Ownership.TryTakeResolverLease("sbr", "b");
        Ownership.ReleaseResolverLease("sbr", "b");
        var afterReleaseByOther = Ownership.TryTakeResolverLease("sbr", "b");
        var otherName = Ownership.TryTakeResolverLease("another-cluster-sbr", "c");
        Thread.Sleep(Ttl + TimeSpan.FromMilliseconds(100));
        var afterExpiry = Ownership.TryTakeResolverLease("sbr", "b");
        var byTheDeadHolder = Ownership.TryTakeResolverLease("sbr", "a");
        Ownership.ReleaseResolverLease("sbr", "b");
        var afterRelease = Ownership.TryTakeResolverLease("sbr", "c");

        // assert
        Assert.True(taken.Acquired);
        Assert.Equal((false, "a"), (whileAlive.Acquired, whileAlive.Holder));
        Assert.InRange(whileAlive.RetryAfter, TimeSpan.Zero, Ttl);
        Assert.False(afterReleaseByOther.Acquired, "a release by a node that does not hold the lease freed it");
        Assert.True(otherName.Acquired, "leases of other names are independent");
        Assert.Equal((true, taken.Epoch + 1), (afterExpiry.Acquired, afterExpiry.Epoch));
        Assert.Equal((false, "b"), (byTheDeadHolder.Acquired, byTheDeadHolder.Holder));
        Assert.True(afterRelease.Acquired);
    }

    [Fact]
    public async Task A_resolver_that_finds_the_lease_held_by_a_node_that_stopped_renewing_waits_it_out_and_takes_it()
    {
        // arrange: the holder's last renewal (600 ms) is still running, as for a node frozen a moment ago
        Ownership.RenewNode("frozen", TimeSpan.FromMilliseconds(600));
        Assert.True(Ownership.TryTakeResolverLease("sbr", "frozen").Acquired);
        var (resolver, mine) = NewResolverLease("survivor");

        // act
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var acquired = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));

        // assert: acquired (Akka's resolver would have downed its own side on a refusal), after the holder's lease ran out
        Assert.True(acquired, "the resolver gave up on a lease whose holder had stopped renewing");
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(3));
        Assert.True(resolver.CheckLease());
        Assert.Equal((false, mine.NodeId), Holder(Ownership.TryTakeResolverLease("sbr", "someone-else")));
    }

    [Fact]
    public async Task A_resolver_that_finds_the_lease_held_by_a_live_node_says_no_after_about_a_ttl_and_a_released_lease_is_taken_at_once()
    {
        // arrange: the holder renews its node lease all along
        var holder = NewLease("holder");
        Assert.True(Ownership.TryTakeResolverLease("sbr", holder.NodeId).Acquired);
        var (resolver, _) = NewResolverLease("other-side");

        // act
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var acquired = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));
        var refusedAfter = clock.Elapsed;
        var heldAfterRefusal = resolver.CheckLease();
        Ownership.ReleaseResolverLease("sbr", holder.NodeId);
        clock.Restart();
        var afterRelease = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));

        // assert
        Assert.False(acquired, "the lease was taken from a holder whose node lease is live");
        Assert.False(heldAfterRefusal);
        Assert.InRange(refusedAfter, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(3));
        Assert.True(afterRelease);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromMilliseconds(500));
        Assert.True(await resolver.Release());
        Assert.False(resolver.CheckLease());
        Assert.True(Ownership.TryTakeResolverLease("sbr", holder.NodeId).Acquired, "the released lease was still held");
    }

    [Fact]
    public async Task A_resolver_on_a_minority_side_never_takes_the_lease_and_gives_up_the_one_it_holds_at_once()
    {
        // arrange: this node took the lease while its side was the majority; then most members became unreachable
        var minority = false;
        var (resolver, mine) = NewResolverLease("was-majority", strictMinority: () => minority);
        Assert.True(await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(resolver.CheckLease());
        minority = true;
        var other = NewLease("other-side");

        // act
        var heldAsMinority = resolver.CheckLease();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var acquired = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));
        var answeredAfter = clock.Elapsed;
        var takenByTheOtherSide = Ownership.TryTakeResolverLease("sbr", other.NodeId);
        var acquiredWhenFree = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));

        // assert: no lease for a minority, not even its own or a free one, and the other side takes it at once
        Assert.False(heldAsMinority);
        Assert.False(acquired);
        Assert.InRange(answeredAfter, TimeSpan.Zero, TimeSpan.FromMilliseconds(300));
        Assert.True(takenByTheOtherSide.Acquired, $"the minority kept the lease from {mine.NodeId}");
        Assert.False(acquiredWhenFree);
    }

    [Fact]
    public void The_resolver_lease_is_taken_over_from_a_live_holder_only_when_that_holder_is_named()
    {
        Ownership.RenewNode("a", TimeSpan.FromSeconds(10));
        Ownership.RenewNode("b", TimeSpan.FromSeconds(10));
        var held = Ownership.TryTakeResolverLease("sbr", "a");

        var namingAnother = Ownership.TryTakeResolverLease("sbr", "b", takeOverFrom: "c");
        var namingTheHolder = Ownership.TryTakeResolverLease("sbr", "b", takeOverFrom: "a");
        var backWithAStaleName = Ownership.TryTakeResolverLease("sbr", "a", takeOverFrom: "a");

        Assert.Equal((false, "a"), Holder(namingAnother));
        Assert.Equal((true, held.Epoch + 1), (namingTheHolder.Acquired, namingTheHolder.Epoch));
        Assert.Equal((false, "b"), Holder(backWithAStaleName));
    }

    [Fact]
    public async Task A_resolver_takes_the_lease_at_once_from_a_live_holder_it_sees_on_its_own_side_of_the_split()
    {
        // arrange: the last decision was taken by another member, which renews all along and which this node reaches
        var holder = NewLease("previous-leader");
        Assert.True(Ownership.TryTakeResolverLease("sbr", holder.NodeId).Acquired);
        var (resolver, mine) = NewResolverLease("new-leader", onThisSide: h => h == holder.NodeId);

        // act
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var acquired = await resolver.Acquire().WaitAsync(TimeSpan.FromSeconds(10));

        // assert: taken without waiting (refused, Akka's resolver would have downed this side, the holder with it)
        Assert.True(acquired);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromMilliseconds(500));
        Assert.Equal((false, mine.NodeId), Holder(Ownership.TryTakeResolverLease("sbr", holder.NodeId)));
    }

    private (ResolverLease Lease, NodeLease NodeLease) NewResolverLease(string node, Func<string, bool>? onThisSide = null, Func<bool>? strictMinority = null)
    {
        var timing = new LeaseSettings();
        var nodeLease = NewLease(node, timing);
        var settings = new Akka.Coordination.LeaseSettings("sbr", node, new Akka.Coordination.TimeoutSettings(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5)), Akka.Configuration.Config.Empty);
        return (new ResolverLease(settings, Ownership, nodeLease, timing, new ResolverLease.SplitView(onThisSide ?? (_ => false), strictMinority ?? (() => false)), Sys.Log), nodeLease);
    }

    private static (bool Acquired, string? Holder) Holder(AcquireResult result) => (result.Acquired, result.Holder);
}
