using System.Collections.Concurrent;
using System.Net;
using System.Text;
using ActorHa.Domain;
using ActorHa.Launcher;
using ActorHa.Launcher.Workload;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// Real network cuts between real node processes (Akka.Remote's throttler behind /v1/faults): clients keep
/// reaching every node over HTTP, every node keeps reaching the database, only the nodes lose each other.
/// </summary>
public sealed class NetworkPartitionSpecs(ITestOutputHelper output)
{
    private static readonly PartitionMap Map = new(32);

    [Fact]
    public async Task In_a_2_to_1_split_the_majority_serves_every_partition_the_minority_downs_itself_and_no_acknowledged_write_is_lost()
    {
        await using var spec = new SpecCluster(output, faultInjection: true);
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());
            var third = spec["third"];
            var thirdOwns = (await SpecCluster.ViewOf(spec["first"])).Owners.Count(o => o == third.AkkaPort);
            Assert.True(thirdOwns > 0, "third owns no partition, so the split would test nothing");

            var acked = new ConcurrentDictionary<string, long>();
            var thirdAnswers = new ConcurrentBag<string>();
            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, 6).Select(c => Task.Run(async () =>
            {
                for (var i = 0; !stop.IsCancellationRequested; i++)
                {
                    var key = $"split/{c}/{i % 64}";
                    var node = spec.Cluster.Nodes[(c + i) % 3];
                    try
                    {
                        var outcome = await node.Client.PutAsync(key, Encoding.UTF8.GetBytes(key));
                        if (outcome.IsSuccess)
                        {
                            acked.AddOrUpdate(key, outcome.Value!.Version, (_, v) => Math.Max(v, outcome.Value!.Version));
                        }

                        if (node == third)
                        {
                            thirdAnswers.Add(((int)outcome.Status).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        // The minority shut down under this request: its outcome is unknown, and nothing is counted.
                        await Task.Delay(50);
                    }
                }
            })).ToList();

            await spec.Step($"under load, the network is cut between {{first, second}} and {{third}}, which owns {thirdOwns} partitions", async () =>
            {
                await Task.Delay(1500);
                await spec.Split(["first", "second"], ["third"]);
            });

            await spec.Step("third downs itself and exits with code 4; first and second see only each other and own every partition", async () =>
            {
                await spec.Barrier("minority gone", ["third"], SpecCluster.HasExited);
                Assert.Equal(4, third.Process!.ExitCode); // "downed by the cluster: restart to rejoin"
                await spec.Barrier("majority alone", ["first", "second"], spec.SeesMembers("first", "second"));
            });

            await spec.Step("the majority acknowledges a write to every partition", async () =>
            {
                await Task.Delay(1000);
                stop.Cancel();
                await Task.WhenAll(writers);
                foreach (var key in OneKeyPerPartition("after-split"))
                {
                    var put = await spec["first"].Client.PutAsync(key, Encoding.UTF8.GetBytes("after"));
                    Assert.True(put.IsSuccess, $"put {key}: {(int)put.Status} {put.Problem?.Detail}");
                }
            });

            await spec.Step("every write acknowledged on either side, the minority's included, reads back at its version or later", async () =>
            {
                Assert.True(acked.Count > 100, $"only {acked.Count} keys acknowledged");
                Assert.DoesNotContain("500", thirdAnswers);
                output.WriteLine($"third answered: {string.Join(' ', thirdAnswers.GroupBy(a => a).Select(g => $"{g.Key}×{g.Count()}"))}");
                foreach (var (key, version) in acked)
                {
                    var read = await spec["second"].Client.GetAsync(key);
                    Assert.True(read.Status == HttpStatusCode.OK && read.Value!.Version >= version, $"{key}: acknowledged at version {version}, read {(int)read.Status} version {read.Value?.Version}");
                }
            });

            await spec.Step("after the network heals, third restarts and rejoins", async () =>
            {
                await spec.Heal();
                spec.Restart("third");
                await spec.Barrier("rejoined", ["first", "second", "third"], spec.SeesMembers("first", "second", "third"), TimeSpan.FromSeconds(60));
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    [Fact]
    public async Task In_a_2_to_2_split_of_four_nodes_the_side_with_the_lowest_address_survives_and_no_partition_ever_has_two_owners()
    {
        await using var spec = new SpecCluster(output, nodes: 4, faultInjection: true);
        try
        {
            await spec.Step("four nodes form a cluster", () => spec.StartAll());
            var workload = new RegisterWorkload(spec.Cluster, seed: 22, keyPrefix: "split22/");
            using var stop = new CancellationTokenSource();
            var clients = workload.RunAsync(8, stop.Token);

            await spec.Step("under concurrent writes, compare-and-sets and reads, the network splits {first, second} | {third, fourth}", async () =>
            {
                await Task.Delay(2000);
                await spec.Split(["first", "second"], ["third", "fourth"]);
            });

            await spec.Step("keep-majority breaks the tie by the lowest address: third and fourth down themselves, first and second own every partition", async () =>
            {
                await spec.Barrier("losing side gone", ["third", "fourth"], SpecCluster.HasExited);
                await spec.Barrier("winning side alone", ["first", "second"], spec.SeesMembers("first", "second"));
            });

            await spec.Step("the history of every client, the writes both sides acknowledged included, is linearizable", async () =>
            {
                await Task.Delay(2000);
                stop.Cancel();
                await clients;
                await workload.FinalReadsAsync(CancellationToken.None);
                var result = workload.Check();
                output.WriteLine($"operations {result.Operations}: ok {result.Ok}, failed {result.Failed}, indeterminate {result.Indeterminate}");
                Assert.True(result.Ok > 200, $"only {result.Ok} acknowledged operations");
                Assert.True(result.IsValid, string.Join(Environment.NewLine, result.Violations.Take(10)));
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    [Fact]
    public async Task When_only_the_link_between_two_nodes_is_cut_both_ends_are_downed_and_the_third_keeps_every_partition_without_flapping()
    {
        await using var spec = new SpecCluster(output, faultInjection: true);
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());
            var key = OneKeyPerPartition("link").First();
            var before = await spec["third"].Client.PutAsync(key, Encoding.UTF8.GetBytes("before"));
            Assert.True(before.IsSuccess);

            await spec.Step("the fault endpoint refuses a peer that is not host:port with 400 problem+json", async () =>
            {
                using var http = new HttpClient { BaseAddress = new Uri(spec["first"].HttpUrl + "/") };
                using var response = await http.PutAsync("v1/faults/network/not-a-peer", content: null);
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            });

            await spec.Step("the link first–second is cut; both still reach third", () => spec.Blackhole("first", "second"));

            await spec.Step("the split-brain resolver downs both indirectly connected nodes; third alone owns every partition", async () =>
            {
                await spec.Barrier("both ends gone", ["first", "second"], SpecCluster.HasExited);
                await spec.Barrier("third alone", ["third"], spec.SeesMembers("third"));
            });

            await spec.Step("for 5 s third's membership stays the same, and it serves every partition with the earlier write", async () =>
            {
                var until = DateTime.UtcNow.AddSeconds(5);
                var third = spec["third"];
                while (DateTime.UtcNow < until)
                {
                    var view = await SpecCluster.ViewOf(third);
                    Assert.Equal([third.AkkaPort], view.All);
                    await Task.Delay(200);
                }

                var read = await third.Client.GetAsync(key);
                Assert.Equal((HttpStatusCode.OK, before.Value!.Version), (read.Status, read.Value!.Version));
                foreach (var k in OneKeyPerPartition("link-after"))
                {
                    var put = await third.Client.PutAsync(k, Encoding.UTF8.GetBytes("after"));
                    Assert.True(put.IsSuccess, $"put {k}: {(int)put.Status} {put.Problem?.Detail}");
                }
            });

            await spec.Step("restarted, first and second rejoin through third", async () =>
            {
                spec.Restart("first");
                spec.Restart("second");
                await spec.Barrier("rejoined", ["first", "second", "third"], spec.SeesMembers("first", "second", "third"), TimeSpan.FromSeconds(60));
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    /// <summary>One key in each of the 32 partitions.</summary>
    private static IEnumerable<string> OneKeyPerPartition(string prefix) =>
        Enumerable.Range(0, 10_000).Select(i => $"{prefix}/{i}").DistinctBy(k => Map.For(k).Value).Take(Map.PartitionCount);
}
