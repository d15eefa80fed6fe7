using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using ActorHa.Client;
using ActorHa.Domain;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// The docker-compose demo, for real: image built, PostgreSQL and three node containers, keys written through
/// every published port, a container killed with SIGKILL, its partitions served again by the survivors with
/// every acknowledged write, the container started again and rejoining. Needs docker-compose and an engine
/// (on a machine without Docker, ../shared/containers/setup.sh provides podman's Docker API; .ci/run runs it).
/// </summary>
public sealed class ComposeDemoSpecs(ITestOutputHelper output)
{
    private static readonly string Root = FindRoot();
    private static readonly string ComposeFile = Path.Combine(Root, "docker", "docker-compose.yml");
    private static readonly PartitionMap Map = new(PartitionMap.DefaultPartitionCount);

    [Fact]
    public async Task The_compose_demo_survives_a_killed_container_without_losing_an_acknowledged_write()
    {
        var clock = Stopwatch.StartNew();
        var nodes = new[] { 1, 2, 3 }.ToDictionary(i => i, i => ActorHaClient.For($"http://127.0.0.1:{8080 + i}", TimeSpan.FromSeconds(15)));
        try
        {
            await Compose("down", "-v");
            await Compose("up", "-d", "--build");
            Mark(clock, "image built, containers started");

            await Until(async () => (await Task.WhenAll(nodes.Values.Select(n => n.IsReadyAsync()))).All(r => r), TimeSpan.FromMinutes(3), "all three nodes ready");
            Mark(clock, "all three nodes ready");

            var acked = new ConcurrentDictionary<string, (long Version, byte[] Value)>();
            var keys = Enumerable.Range(0, 300).Select(i => $"compose/{i}").ToList();
            await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (key, ct) =>
            {
                var node = nodes[1 + (Math.Abs(key.GetHashCode(StringComparison.Ordinal)) % 3)];
                var value = Encoding.UTF8.GetBytes("value of " + key);
                var put = await node.PutAsync(key, value, ct: ct);
                Assert.True(put.IsSuccess, $"{key}: {(int)put.Status} {put.Problem?.Detail}");
                acked[key] = (put.Value!.Version, value);
            });
            Mark(clock, $"{acked.Count} keys written through every published port");

            // Over RemoteValueLimitBytes: a node that does not own it fetches it from the owner's API by container name
            // (PeerHttpUrl), not by the published port clients are given, which does not exist inside the network.
            var large = Enumerable.Range(0, 512 * 1024).Select(i => (byte)(i * 7)).ToArray();
            var largePut = await nodes[1].PutAsync("compose/large", large);
            Assert.True(largePut.IsSuccess, $"{(int)largePut.Status} {largePut.Problem?.Detail}");
            foreach (var (index, node) in nodes)
            {
                var read = await node.GetAsync("compose/large");
                Assert.True(read.IsSuccess && read.Value!.Value.SequenceEqual(large) && read.Value.Version == largePut.Value!.Version,
                    $"node{index}: {(int)read.Status} {read.Problem?.Detail}");
            }

            Mark(clock, "a 512 KiB value reads back through every published port");

            await Compose("kill", "-s", "SIGKILL", "node2");
            Mark(clock, "node2 killed (SIGKILL)");

            // Every partition serves again from the survivors: a read of a key in each partition succeeds.
            var probes = keys.GroupBy(k => Map.For(k)).Select(g => g.First()).ToList();
            Assert.Equal(Map.PartitionCount, probes.Count);
            await Until(async () =>
            {
                var reads = await Task.WhenAll(probes.Select(k => nodes[1].GetAsync(k)));
                return reads.All(r => r.IsSuccess);
            }, TimeSpan.FromMinutes(2), "every partition serving from node1 and node3");
            Mark(clock, "every partition serves again from the survivors");

            foreach (var (key, expected) in acked)
            {
                var read = await nodes[3].GetAsync(key);
                Assert.True(read.IsSuccess && read.Value!.Version == expected.Version && read.Value.Value.SequenceEqual(expected.Value),
                    $"{key}: {(int)read.Status} v{read.Version}, expected v{expected.Version}");
            }

            Mark(clock, "every acknowledged write reads back");

            await Compose("up", "-d", "node2");
            await Until(async () => await nodes[2].IsReadyAsync() && await UpMembers(nodes[1]) == 3, TimeSpan.FromMinutes(2), "node2 rejoined");
            Mark(clock, "node2 started again and rejoined (3 members Up)");
        }
        catch
        {
            output.WriteLine(await Compose("logs", "--tail", "40"));
            throw;
        }
        finally
        {
            await Compose("down", "-v");
        }
    }

    private void Mark(Stopwatch clock, string what) => output.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0} s] {what}");

    private static async Task<int> UpMembers(ActorHaClient node)
    {
        using var doc = await node.ClusterAsync();
        return doc.RootElement.GetProperty("members").EnumerateArray().Count(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean());
    }

    private static async Task Until(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // not there yet
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0} s waiting for: {what}");
            }

            await Task.Delay(500);
        }
    }

    private static async Task<string> Compose(params string[] args)
    {
        var psi = new ProcessStartInfo("docker-compose") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add(ComposeFile);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("docker-compose is not installed. On a machine without Docker run ../shared/containers/setup.sh and export DOCKER_HOST=unix:///run/podman/podman.sock (.ci/run does).", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"docker-compose {string.Join(' ', args)} did not finish within 10 minutes.");
            }

            var text = await stdout + await stderr;
            if (process.ExitCode != 0)
            {
                // The engine's error comes last, after the whole build log: say it first, where a CI summary shows it.
                var errors = string.Join(" | ", text.Split('\n').Where(l => l.Contains("ERROR", StringComparison.Ordinal) || l.Contains("Error:", StringComparison.Ordinal)).Select(l => l.Trim()));
                throw new InvalidOperationException($"docker-compose {string.Join(' ', args)} failed ({process.ExitCode}): {errors}\n{text}");
            }

            return text;
        }
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "ActorHa.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("Repository root (ActorHa.sln) not found above " + AppContext.BaseDirectory);
    }
}
