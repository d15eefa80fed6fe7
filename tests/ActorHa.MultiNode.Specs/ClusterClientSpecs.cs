using System.Text;
using ActorHa.Client;
using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// <see cref="ClusterClient"/> and the CLI commands built on it, against three real nodes: keys go to their owners,
/// and a client that knew a node which is then killed -9 finishes its writes through the survivors, once.
/// </summary>
public sealed class ClusterClientSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_client_that_knew_only_a_killed_node_finishes_its_write_through_the_survivors_and_the_cli_does_too()
    {
        await using var spec = new SpecCluster(output);
        var cluster = spec.Cluster;
        try
        {
            await spec.Step("three nodes start and every partition gets an owner", async () =>
            {
                cluster.StartAll();
                await cluster.WaitUntilReadyAsync(ReadyTimeout);
            });

            var (victim, observer, key) = await SpecCluster.VictimObserverAndKey(cluster, "client-spec/");
            using var client = new ClusterClient([victim.HttpUrl]);

            await spec.Step($"a client given only {victim.Name} learns every node and sends {key} to its owner, {victim.Name}", async () =>
            {
                var put = await client.PutAsync(key, Encoding.UTF8.GetBytes("before"), retryFor: TimeSpan.FromSeconds(30));
                Assert.True(put.IsSuccess, $"{(int)put.Status} {put.Problem?.Detail}");
                Assert.Equal(1, put.Value!.Version);
                Assert.Equal(cluster.Nodes.Select(n => n.HttpUrl).Order(StringComparer.Ordinal), client.Nodes.Order(StringComparer.Ordinal));
                Assert.Equal(victim.HttpUrl, client.OwnerUrlFor(key));
            });

            await spec.Step($"kill -9 {victim.Name}: the same client's next write of {key} is acknowledged through a survivor, once", async () =>
            {
                cluster.Kill(victim.Index);
                var put = await client.PutAsync(key, Encoding.UTF8.GetBytes("after"), retryFor: TimeSpan.FromSeconds(30));
                Assert.True(put.IsSuccess, $"{(int)put.Status} {put.Problem?.Detail}");
                Assert.Equal(2, put.Value!.Version);
                var read = await observer.Client.GetAsync(key);
                Assert.Equal(("after", 2L), (Encoding.UTF8.GetString(read.Value!.Value), read.Value.Version));
            });

            await spec.Step($"the client's routes follow {key}'s partition to its new owner, a survivor", async () =>
            {
                var survivors = cluster.Nodes.Where(n => n != victim).Select(n => n.HttpUrl).ToList();
                var deadline = DateTime.UtcNow.AddSeconds(20);
                while (!survivors.Contains(client.OwnerUrlFor(key) ?? "") && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(ClusterClient.RoutesMaxAge);
                    using var _ = await client.ClusterAsync();
                }

                Assert.Contains(client.OwnerUrlFor(key), survivors);
            });

            await spec.Step($"`actorha put` and `get` with --url {victim.Name},{observer.Name} write and read through {observer.Name}", async () =>
            {
                var urls = $"{victim.HttpUrl},{observer.HttpUrl}";
                var put = await Cli("put", key, "from-cli", "--url", urls);
                Assert.True(put.Exit == 0, put.ToString());
                Assert.Equal($"{key} version 3 (updated)", put.Stdout.Trim());
                var get = await Cli("get", key, "--url", urls);
                Assert.True(get.Exit == 0, get.ToString());
                Assert.Equal("from-cli", get.Stdout);
                Assert.Contains("(version 3)", get.Stderr, StringComparison.Ordinal);
            });

            await spec.Step($"`actorha status` through {victim.Name} and {observer.Name} lists the survivors and the partitions they own", async () =>
            {
                var status = await Cli("status", "--url", $"{victim.HttpUrl},{observer.HttpUrl}");
                Assert.True(status.Exit == 0, status.ToString());
                foreach (var survivor in cluster.Nodes.Where(n => n != victim))
                {
                    Assert.Contains($" {survivor.HttpUrl} ", status.Stdout, StringComparison.Ordinal);
                }

                Assert.DoesNotContain(victim.HttpUrl, status.Stdout, StringComparison.Ordinal);
                Assert.Contains("partitions: 32", status.Stdout, StringComparison.Ordinal);
                var json = await Cli("status", "--url", observer.HttpUrl, "--json");
                using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
                Assert.Equal(32, doc.RootElement.GetProperty("partitions").GetArrayLength());
            });

            await spec.Step($"with only {victim.Name}'s URL and no retries, `actorha get` is a one-line error with exit 1", async () =>
            {
                var get = await Cli("get", key, "--url", victim.HttpUrl, "--retry-for", "0");
                Assert.True(get.Exit == 1, get.ToString());
                Assert.StartsWith($"actorha get: cannot connect to {victim.HttpUrl}", get.Stderr, StringComparison.Ordinal);
                Assert.Single(get.Stderr.Trim().Split('\n'));
            });

            await spec.Step("a --url that is not an http URL is refused with exit 2 before anything is sent", async () =>
            {
                var put = await Cli("put", key, "x", "--url", "127.0.0.1:8081");
                Assert.True(put.Exit == 2, put.ToString());
                Assert.Contains("--url must be an http(s) URL", put.Stderr, StringComparison.Ordinal);
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    private static Task<CliProcess.Result> Cli(params string[] args) => CliProcess.RunAsync(TimeSpan.FromSeconds(60), args);
}
