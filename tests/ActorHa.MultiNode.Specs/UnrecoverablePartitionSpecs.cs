using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ActorHa.Client;
using ActorHa.Domain;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// Two real node processes on one SQLite store in which one partition's first event has been cut short (damage on disk,
/// a bad restore): that partition cannot be recovered by any node. Its requests must be refused at once and say why,
/// through the node that holds it and through the other one, every node must show it, and the rest must serve.
/// </summary>
public sealed class UnrecoverablePartitionSpecs(ITestOutputHelper output)
{
    private const int KeyCount = 200;

    [Fact]
    public async Task A_partition_with_an_unreadable_event_is_refused_at_once_through_every_node_and_shown_by_every_node_while_the_others_serve()
    {
        await using var spec = new SpecCluster(output, nodes: 2);
        var cluster = spec.Cluster;
        try
        {
            await spec.Step("first and second form a cluster", () => spec.StartAll());

            var map = new PartitionMap((await SpecCluster.ViewOf(cluster[1])).Owners.Count);
            var keys = Enumerable.Range(0, KeyCount).Select(i => $"key{i}").ToList();
            var damaged = map.For(keys[0]);
            var healthyKeys = keys.Where(k => map.For(k) != damaged).ToList();
            await spec.Step($"{KeyCount} keys are written and acknowledged", async () =>
            {
                foreach (var key in keys)
                {
                    var outcome = await cluster[1].Client.PutAsync(key, Encoding.UTF8.GetBytes($"value of {key}"));
                    Assert.True(outcome.IsSuccess, $"put {key}: {(int)outcome.Status} {outcome.Problem?.Detail}");
                }
            });

            await spec.Step($"both nodes stop, and partition {damaged}'s first event is cut to two bytes", async () =>
            {
                await cluster.StopAsync(2, TimeSpan.FromSeconds(60));
                await cluster.StopAsync(1, TimeSpan.FromSeconds(60));
                using (var connection = new SqliteConnection($"Data Source={Path.Combine(spec.DataDir, "actorha.db")}"))
                {
                    connection.Open();
                    using var update = connection.CreateCommand();
                    update.CommandText = $"UPDATE event_journal SET payload = X'0102' WHERE persistence_id = 'partition-{damaged}' AND sequence_nr = 1";
                    Assert.Equal(1, update.ExecuteNonQuery());
                }

                SqliteConnection.ClearAllPools();
            });

            await spec.Step("both nodes start again and report ready", () => spec.StartAll());

            foreach (var node in cluster.Nodes)
            {
                await spec.Step($"through {node.Name}, a read and a write of partition {damaged} get 503 partition-unrecoverable at once, saying why", async () =>
                {
                    using var http = new HttpClient { BaseAddress = new Uri(node.HttpUrl + "/") };
                    // The first request may arrive while the partition is still trying to recover: it waits for that.
                    using (await http.GetAsync(ActorHaClient.KeyPath(keys[0])))
                    {
                    }

                    var clock = Stopwatch.StartNew();
                    using var read = await http.GetAsync(ActorHaClient.KeyPath(keys[0]));
                    var readTook = clock.Elapsed;
                    await AssertUnrecoverable(read, damaged);
                    Assert.True(readTook < TimeSpan.FromSeconds(1), $"the read was refused after {readTook.TotalMilliseconds:0} ms");

                    clock.Restart();
                    using var write = await http.PutAsync(ActorHaClient.KeyPath(keys[0]), new ByteArrayContent([1, 2, 3]));
                    var writeTook = clock.Elapsed;
                    await AssertUnrecoverable(write, damaged);
                    Assert.True(writeTook < TimeSpan.FromSeconds(1), $"the write was refused after {writeTook.TotalMilliseconds:0} ms");
                });
            }

            await spec.Step($"every node's /v1/cluster shows partition {damaged} unrecoverable with the reason, and no other", async () =>
            {
                foreach (var node in cluster.Nodes)
                {
                    await WaitFor(async () =>
                    {
                        using var doc = await node.Client.ClusterAsync();
                        var unrecoverable = doc.RootElement.GetProperty("partitions").EnumerateArray()
                            .Where(p => p.GetProperty("state").GetString() == "unrecoverable")
                            .Select(p => (Partition: p.GetProperty("partition").GetInt32(), Problem: p.GetProperty("problem").GetString() ?? ""))
                            .ToList();
                        return unrecoverable.Count == 1 && unrecoverable[0].Partition == damaged.Value && unrecoverable[0].Problem.Contains("a stored event cannot be read", StringComparison.Ordinal);
                    }, $"{node.Name}'s /v1/cluster never showed partition {damaged} alone as unrecoverable");
                }
            });

            await spec.Step("actorha status names it", async () =>
            {
                var status = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), "status", "--url", cluster[2].HttpUrl);
                Assert.True(status.Exited && status.Exit == 0, status.ToString());
                Assert.Contains("UNRECOVERABLE partitions: 1", status.Stdout, StringComparison.Ordinal);
                Assert.Contains($"{damaged.Value,3} on http://", status.Stdout, StringComparison.Ordinal);
            });

            await spec.Step("actorha get of a key there fails at once with the reason, instead of retrying on every node for 10 s", async () =>
            {
                var clock = Stopwatch.StartNew();
                var get = await CliProcess.RunAsync(TimeSpan.FromSeconds(60), "get", keys[0], "--url", $"{cluster[1].HttpUrl},{cluster[2].HttpUrl}");
                Assert.True(get.Exited && get.Exit != 0, get.ToString());
                Assert.Contains("cannot be recovered", get.Stderr, StringComparison.Ordinal);
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"actorha get took {clock.Elapsed.TotalSeconds:0.0} s");
            });

            await spec.Step("every key of the other partitions reads back through both nodes", async () =>
            {
                foreach (var node in cluster.Nodes)
                {
                    foreach (var key in healthyKeys)
                    {
                        var outcome = await node.Client.GetAsync(key);
                        Assert.True(outcome.IsSuccess, $"get {key} via {node.Name}: {(int)outcome.Status} {outcome.Problem?.Detail}");
                        Assert.Equal($"value of {key}", Encoding.UTF8.GetString(outcome.Value!.Value));
                    }
                }
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    private static async Task AssertUnrecoverable(HttpResponseMessage response, PartitionId partition)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(response.Headers.RetryAfter?.Delta);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("urn:actorha:problem:partition-unrecoverable", problem.RootElement.GetProperty("type").GetString());
        Assert.Equal(partition.Value, problem.RootElement.GetProperty("partition").GetInt32());
        Assert.Contains("a stored event cannot be read", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    private static async Task WaitFor(Func<Task<bool>> condition, string failure)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(200);
        }
    }
}
