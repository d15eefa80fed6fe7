using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace ActorHa.Api.Specs;

/// <summary>A node of its own: these specs take its lease away, which restarts every partition on it.</summary>
public sealed class LeaseNodeFixture : NodeFixture
{
    /// <summary>Far above how fast a request must be refused while the lease is not current, and below the HTTP client's 30 s.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(20);

    protected override IReadOnlyDictionary<string, string?> StoreSettings() =>
        new Dictionary<string, string?> { ["ActorHa:RequestTimeout"] = RequestTimeout.ToString() };
}

/// <summary>/healthz/ready tells a load balancer whether this node can serve, not only whether it is a member.</summary>
public sealed class ReadinessSpecs(LeaseNodeFixture node) : IClassFixture<LeaseNodeFixture>
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_node_whose_store_cannot_confirm_its_lease_is_not_ready_and_is_ready_again_once_it_can()
    {
        // arrange: a ready node
        Assert.Equal(HttpStatusCode.OK, (await ReadyAsync()).Status);

        // act: another client holds the lease file's write lock, so no renewal can commit (the store "hangs")
        await using (await LockLeasesAsync())
        {
            // assert: not ready, saying why, while the lock is held
            var notReady = await EventuallyAsync(r => r.Status == HttpStatusCode.ServiceUnavailable);
            Assert.Contains("lease", notReady.Detail, StringComparison.Ordinal);
        }

        // assert: ready again once renewals go through
        await EventuallyAsync(r => r.Status == HttpStatusCode.OK);
        SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task A_request_for_a_partition_on_a_node_whose_lease_has_lapsed_is_refused_at_once_not_after_the_request_timeout()
    {
        // arrange: a ready node whose store stops confirming its lease, with the key's partition running. Ready does not
        // wait for every partition: one still starting when the lock comes holds the write until it runs, so the write
        // is sent and its outcome unknown (503), and it is applied once the lock goes (seen on a fresh node in CI).
        Assert.Equal(HttpStatusCode.OK, (await ReadyAsync()).Status);
        using (var served = await node.Http.GetAsync("v1/kv/lapsed-lease"))
        {
            Assert.Equal(HttpStatusCode.NotFound, served.StatusCode);
        }
        HttpStatusCode status;
        string body;
        TimeSpan took;
        await using (await LockLeasesAsync())
        {
            await EventuallyAsync(r => r.Status == HttpStatusCode.ServiceUnavailable);

            // act: a write for one of its partitions (a one-node cluster owns them all)
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var response = await node.Http.PutAsync("v1/kv/lapsed-lease", new StringContent("v"));
            took = clock.Elapsed;
            status = response.StatusCode;
            body = await response.Content.ReadAsStringAsync();
            Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        }

        // assert: 503 within a few seconds (a lease TTL, 1 s, of retrying), far from the 20 s request timeout
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.True(took < TimeSpan.FromSeconds(10), $"refused only after {took.TotalSeconds:0.0} s (request timeout {LeaseNodeFixture.RequestTimeout.TotalSeconds:0} s)");
        Assert.Contains("urn:actorha:problem:unavailable", body, StringComparison.Ordinal);
        Assert.Contains("lease has not been current", body, StringComparison.Ordinal);

        // and once renewals go through again, the same write succeeds
        await EventuallyAsync(r => r.Status == HttpStatusCode.OK);
        using var again = await node.Http.PutAsync("v1/kv/lapsed-lease", new StringContent("v"));
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        SqliteConnection.ClearAllPools();
    }

    /// <summary>Holds the lease file's write lock (BEGIN EXCLUSIVE) until disposed, then rolls back.</summary>
    private async Task<IAsyncDisposable> LockLeasesAsync()
    {
        var blocker = new SqliteConnection($"Data Source={Path.Combine(node.DataDir, "actorha.leases.db")};Pooling=False");
        await blocker.OpenAsync();
        await using var begin = blocker.CreateCommand();
        begin.CommandText = "BEGIN EXCLUSIVE";
        await begin.ExecuteNonQueryAsync();
        return new LeaseLock(blocker);
    }

    private sealed class LeaseLock(SqliteConnection blocker) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await using (var rollback = blocker.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK";
                await rollback.ExecuteNonQueryAsync();
            }

            await blocker.DisposeAsync();
        }
    }

    private async Task<(HttpStatusCode Status, string Detail)> EventuallyAsync(Func<(HttpStatusCode Status, string Detail), bool> condition)
    {
        var deadline = DateTime.UtcNow + Within;
        while (true)
        {
            var answer = await ReadyAsync();
            if (condition(answer))
            {
                return answer;
            }

            Assert.True(DateTime.UtcNow < deadline, $"readiness still {(int)answer.Status} {answer.Detail} after {Within.TotalSeconds:0} s");
            await Task.Delay(50);
        }
    }

    private async Task<(HttpStatusCode Status, string Detail)> ReadyAsync()
    {
        using var response = await node.Http.GetAsync("healthz/ready");
        var body = await response.Content.ReadAsStringAsync();
        using var json = JsonDocument.Parse(body);
        var detail = json.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? "" : "";
        return (response.StatusCode, detail);
    }
}
