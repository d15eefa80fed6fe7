using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using ActorHa.Client;
using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// Three real node processes, one shared SQLite journal: acknowledged writes survive kill -9 of a node,
/// and kill -9 of every node.
/// </summary>
public sealed class KillAndRestartSpecs(ITestOutputHelper output)
{
    private const int KeyCount = 1000;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_3_node_cluster_keeps_every_acknowledged_write_through_kill_9_of_one_node_and_of_all_nodes()
    {
        await using var spec = new SpecCluster(output);
        var cluster = spec.Cluster;
        var acked = new ConcurrentDictionary<string, long>();
        try
        {
            await spec.Step("three nodes start and every partition gets an owner", async () =>
            {
                cluster.StartAll();
                await cluster.WaitUntilReadyAsync(ReadyTimeout);
            });

            await spec.Step("1,000 keys are written through different nodes and all acknowledged", async () =>
            {
                await Parallel.ForEachAsync(Enumerable.Range(0, KeyCount), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                {
                    var key = KeyOf(i);
                    var node = cluster.Nodes[i % cluster.Nodes.Count];
                    var outcome = await node.Client.PutAsync(key, ValueOf(i), ct: ct);
                    Assert.True(outcome.IsSuccess, $"put {key} via {node.Name}: {(int)outcome.Status} {outcome.Problem?.Detail}");
                    acked[key] = outcome.Value!.Version;
                });
                Assert.Equal(KeyCount, acked.Count);
            });

            await spec.Step("every key reads back from every node at its acknowledged version", () => ReadEverythingFromEveryNode(cluster, acked));

            var owned = await PartitionsByOwner(cluster[1]);
            var victim = cluster.Nodes.OrderBy(n => n.Index == 1).First(n => owned.GetValueOrDefault(n.AkkaPort) > 0);
            var observer = cluster.Nodes.First(n => n != victim);
            var keyOfVictim = await KeyOwnedBy(observer, victim.AkkaPort, acked.Keys);
            await spec.Step($"kill -9 {victim.Name}, which owns {owned[victim.AkkaPort]} partitions", () =>
            {
                cluster.Kill(victim.Index);
                return Task.CompletedTask;
            });

            await spec.Step("the dead node's partitions serve again from the survivors with every acknowledged write", async () =>
            {
                using var http = new HttpClient { BaseAddress = new Uri(observer.HttpUrl + "/") };
                using var first = await http.GetAsync(ActorHaClient.KeyPath(keyOfVictim));
                Assert.Equal(HttpStatusCode.OK, first.StatusCode);
                await ReadEverythingFrom(cluster.Nodes.Where(n => n != victim), acked);
            });

            await spec.Step("the killed node restarts on its old address and the cluster is whole again", async () =>
            {
                cluster.Start(victim.Index);
                await cluster.WaitUntilReadyAsync(ReadyTimeout);
            });

            await spec.Step("every acknowledged write reads back again from every node", () => ReadEverythingFromEveryNode(cluster, acked));

            await spec.Step("kill -9 every node, then start them all again", async () =>
            {
                foreach (var node in cluster.Nodes)
                {
                    cluster.Kill(node.Index);
                }

                cluster.StartAll();
                await cluster.WaitUntilReadyAsync(ReadyTimeout);
            });

            await spec.Step("every acknowledged write is there after the full restart", () => ReadEverythingFromEveryNode(cluster, acked));

            await spec.Step("versions continue after the restart instead of starting over", async () =>
            {
                var key = KeyOf(0);
                var outcome = await cluster[2].Client.PutAsync(key, Encoding.UTF8.GetBytes("after restart"), expectedVersion: acked[key]);
                Assert.Equal(HttpStatusCode.OK, outcome.Status);
                Assert.Equal(acked[key] + 1, outcome.Value!.Version);
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    [Fact]
    public async Task A_node_started_with_another_partition_count_against_the_same_store_refuses_to_start()
    {
        await using var spec = new SpecCluster(output, nodes: 1);
        spec.Cluster.StartAll();
        await spec.Cluster.WaitUntilReadyAsync(ReadyTimeout);

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in new[] { SpecCluster.NodeProgram, "node", "--partitions", "16", "--data-dir", spec.DataDir, "--port", Ports.FindFreeRange(1).ToString(System.Globalization.CultureInfo.InvariantCulture), "--http", $"http://127.0.0.1:{Ports.FindFreeRange(1)}" })
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "the node did not exit");

        Assert.Equal(3, process.ExitCode);
        Assert.Contains("created with 32 partitions", await stderr);
    }

    [Fact]
    public async Task Writes_retried_with_their_Idempotency_Key_after_the_owner_is_killed_are_applied_once_from_snapshots_and_events()
    {
        // Snapshots every 10 events: the new owner recovers remembered requests both from a snapshot and from the
        // events after it.
        await using var spec = new SpecCluster(output, settings: new Dictionary<string, string> { ["SnapshotEvery"] = "10" });
        const int Keys = 200;
        string[] rounds = ["a", "b", "c"];
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());

            await spec.Step("200 keys are each written three times, every write with its own Idempotency-Key", async () =>
            {
                foreach (var (round, r) in rounds.Select((round, r) => (round, r)))
                {
                    await Parallel.ForEachAsync(Enumerable.Range(0, Keys), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                    {
                        var node = spec.Cluster.Nodes[(i + r) % 3];
                        var (status, version) = await PutOnce(node, i, round, ct);
                        Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"put {KeyOf(i)} round {round} via {node.Name}: {(int)status}");
                        Assert.Equal(r + 1, version);
                    });
                }
            });

            var view = await SpecCluster.ViewOf(spec["first"]);
            var victimRole = spec.Roles.First(role => role != "first" && view.Owners.Count(o => o == spec[role].AkkaPort) > 0);
            var victim = spec[victimRole];
            var map = new ActorHa.Domain.PartitionMap(32);
            var keysOfVictim = Enumerable.Range(0, Keys).Count(i => view.Owners[map.For(KeyOf(i)).Value] == victim.AkkaPort);
            Assert.True(keysOfVictim > 0, $"{victimRole} owns none of the keys");
            var survivors = spec.Roles.Where(r => r != victimRole).ToArray();

            await spec.Step($"kill -9 {victimRole}, which owns {keysOfVictim} of the keys", () =>
            {
                spec.Kill(victimRole);
                return Task.CompletedTask;
            });

            await spec.Step("every write is retried with its Idempotency-Key through the survivors and gets its first answer back", async () =>
            {
                foreach (var (round, r) in rounds.Select((round, r) => (round, r)))
                {
                    await Parallel.ForEachAsync(Enumerable.Range(0, Keys), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                    {
                        var node = spec[survivors[i % survivors.Length]];
                        var deadline = DateTime.UtcNow.AddSeconds(30);
                        while (true)
                        {
                            var (status, version) = await PutOnce(node, i, round, ct);
                            if (status == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline)
                            {
                                await Task.Delay(200, ct);
                                continue;
                            }

                            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.Created, $"retry of {KeyOf(i)} round {round} via {node.Name}: {(int)status}");
                            Assert.Equal(r + 1, version);
                            return;
                        }
                    });
                }
            });

            await spec.Step("no retry was applied twice: every key is at version 3 with its last value", async () =>
            {
                foreach (var role in survivors)
                {
                    await Parallel.ForEachAsync(Enumerable.Range(0, Keys), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                    {
                        var read = await spec[role].Client.GetAsync(KeyOf(i), ct);
                        Assert.True(read.IsSuccess, $"get {KeyOf(i)} via {role}: {(int)read.Status}");
                        Assert.Equal(3, read.Value!.Version);
                        Assert.Equal(Encoding.UTF8.GetBytes($"{KeyOf(i)} round c"), read.Value.Value);
                    });
                }
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }

        static async Task<(HttpStatusCode Status, long? Version)> PutOnce(LocalNode node, int i, string round, CancellationToken ct)
        {
            using var http = new HttpClient { BaseAddress = new Uri(node.HttpUrl + "/"), Timeout = TimeSpan.FromSeconds(10) };
            using var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(KeyOf(i)))
            {
                Content = new ByteArrayContent(Encoding.UTF8.GetBytes($"{KeyOf(i)} round {round}")),
            };
            request.Headers.TryAddWithoutValidation("Idempotency-Key", $"{KeyOf(i)}/{round}");
            using var response = await http.SendAsync(request, ct);
            var tag = response.Headers.ETag?.Tag.Trim('"');
            return (response.StatusCode, long.TryParse(tag, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null);
        }
    }

    private static string KeyOf(int i) => $"spec/key-{i:D4}";

    private static byte[] ValueOf(int i) => Encoding.UTF8.GetBytes($"value of key {i} written once");

    private static Task ReadEverythingFromEveryNode(LocalCluster cluster, IReadOnlyDictionary<string, long> acked) =>
        ReadEverythingFrom(cluster.Nodes, acked);
    [Fact]
    public async Task Killing_the_node_that_holds_the_sharding_coordinator_moves_the_coordinator_and_relocates_its_partitions()
    {
        await using var spec = new SpecCluster(output);
        var acked = new ConcurrentDictionary<string, long>();
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());
            var view = await SpecCluster.ViewOf(spec["second"]);
            var holder = spec.Cluster.Nodes.Single(n => n.AkkaPort == view.Oldest);
            var holderRole = spec.RoleOf(holder);
            var survivors = spec.Roles.Where(r => r != holderRole).ToArray();
            Assert.True(view.Owners.Count(o => o == holder.AkkaPort) > 0, $"{holderRole} holds the coordinator but no partition");

            await spec.Step("1,000 keys are written and acknowledged", async () =>
            {
                await Parallel.ForEachAsync(Enumerable.Range(0, KeyCount), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                {
                    var node = spec.Cluster.Nodes[i % 3];
                    var outcome = await node.Client.PutAsync(KeyOf(i), ValueOf(i), ct: ct);
                    Assert.True(outcome.IsSuccess, $"put {KeyOf(i)} via {node.Name}: {(int)outcome.Status} {outcome.Problem?.Detail}");
                    acked[KeyOf(i)] = outcome.Value!.Version;
                });
            });

            await spec.Step($"kill -9 {holderRole} ({holder.Name}), the oldest member, which hosts the sharding coordinator", () =>
            {
                spec.Kill(holderRole);
                return Task.CompletedTask;
            });

            await spec.Step("the survivors agree on a new oldest member among them and own every partition", async () =>
            {
                await spec.Barrier("partitions relocated", survivors, spec.SeesMembers(survivors));
                var after = await SpecCluster.ViewOf(spec[survivors[0]]);
                Assert.Contains(after.Oldest, survivors.Select(r => spec[r].AkkaPort));
            });

            await spec.Step("the new coordinator was told to answer at once, not after Akka's 500 ms (CoordinatorWakeUp)", () =>
            {
                var woken = survivors.Select(r => File.ReadAllText(spec[r].LogFile))
                    .Count(log => log.Contains("Shard coordinator akka://actorha/system/sharding/partitionCoordinator/singleton/coordinator started on this node after a downed member was removed", StringComparison.Ordinal));
                Assert.Equal(1, woken);
                return Task.CompletedTask;
            });

            await spec.Step("the new coordinator places new work: every acknowledged write reads back from both survivors", () =>
                ReadEverythingFrom(survivors.Select(r => spec[r]), acked));
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }


    /// <summary>Reads every key from each node. A 503 while a partition settles is retried; any other answer fails.</summary>
    private static async Task ReadEverythingFrom(IEnumerable<LocalNode> nodes, IReadOnlyDictionary<string, long> acked)
    {
        foreach (var node in nodes)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, KeyCount), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            {
                var key = KeyOf(i);
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (true)
                {
                    var read = await node.Client.GetAsync(key, ct);
                    if (read.Status == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline)
                    {
                        await Task.Delay(200, ct);
                        continue;
                    }

                    Assert.True(read.IsSuccess, $"get {key} via {node.Name}: {(int)read.Status} {read.Problem?.Detail}");
                    Assert.Equal(acked[key], read.Value!.Version);
                    Assert.Equal(ValueOf(i), read.Value.Value);
                    return;
                }
            });
        }
    }

    private static async Task<Dictionary<int, int>> PartitionsByOwner(LocalNode node)
    {
        using var doc = await node.Client.ClusterAsync();
        return doc.RootElement.GetProperty("partitions").EnumerateArray()
            .Select(p => p.GetProperty("owner").GetString())
            .Where(o => o is not null)
            .GroupBy(o => new Uri(o!.Replace("akka.tcp://", "tcp://", StringComparison.Ordinal)).Port)
            .ToDictionary(g => g.Key, g => g.Count());
    }

    private static async Task<string> KeyOwnedBy(LocalNode observer, int akkaPort, IEnumerable<string> keys)
    {
        using var doc = await observer.Client.ClusterAsync();
        var owned = doc.RootElement.GetProperty("partitions").EnumerateArray()
            .Where(p => p.GetProperty("owner").GetString() is { } o && o.EndsWith($":{akkaPort}", StringComparison.Ordinal))
            .Select(p => p.GetProperty("partition").GetInt32())
            .ToHashSet();
        var map = new ActorHa.Domain.PartitionMap(32);
        return keys.First(k => owned.Contains(map.For(k).Value));
    }
}
