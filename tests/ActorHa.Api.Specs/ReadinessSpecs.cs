using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace ActorHa.Api.Specs;

/// <summary>A node of its own: these specs take its lease away, which restarts every partition on it.</summary>
public sealed class LeaseNodeFixture : NodeFixture
{
    protected override IReadOnlyDictionary<string, string?> StoreSettings() => new Dictionary<string, string?>();
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
        var leases = Path.Combine(node.DataDir, "actorha.leases.db");
        await using (var blocker = new SqliteConnection($"Data Source={leases};Pooling=False"))
        {
            await blocker.OpenAsync();
            await using (var begin = blocker.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE";
                await begin.ExecuteNonQueryAsync();
            }

            // assert: not ready, saying why, while the lock is held
            var notReady = await EventuallyAsync(r => r.Status == HttpStatusCode.ServiceUnavailable);
            Assert.Contains("lease", notReady.Detail, StringComparison.Ordinal);

            await using var rollback = blocker.CreateCommand();
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync();
        }

        // assert: ready again once renewals go through
        await EventuallyAsync(r => r.Status == HttpStatusCode.OK);
        SqliteConnection.ClearAllPools();
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
