using System.Net;
using System.Text;
using ActorHa.Client;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// The split-brain resolver's tie-break. With two members left, Akka's keep-majority kept the side with the lowest
/// address even when that member was dead or frozen, so the live one downed itself and nothing was served. The
/// resolver now takes a lease in the ownership store before it downs the other side (hocon/actorha.conf,
/// <c>ResolverLease</c>), and a member that is not alive cannot hold it.
/// </summary>
public sealed class ResolverLeaseSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task Of_two_members_the_live_one_survives_when_the_lower_addressed_one_freezes_holding_the_resolver_lease_and_takes_its_partitions()
    {
        await using var spec = new SpecCluster(output, faultInjection: true);
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());
            var (first, second) = (spec["first"], spec["second"]);
            Assert.True(first.AkkaPort < second.AkkaPort, "first must have the lower address: the tie is broken by address");

            await spec.Step("third is cut off; first, the leader, takes the resolver's lease and downs it: a membership of two", async () =>
            {
                await spec.Split(["first", "second"], ["third"]);
                await spec.Barrier("third gone", ["third"], SpecCluster.HasExited);
                await spec.Barrier("two members", ["first", "second"], spec.SeesMembers("first", "second"), TimeSpan.FromSeconds(30));
                await spec.Heal();
                Assert.Contains("SBR acquired lease", File.ReadAllText(first.LogFile), StringComparison.Ordinal);
            });

            var key = await KeyOwnedBy(first, "tie/");
            var before = await second.Client.PutAsync(key, Encoding.UTF8.GetBytes("before"));
            Assert.True(before.IsSuccess, $"{(int)before.Status} {before.Problem?.Detail}");

            // Within the lease's release-after (10 s), so first still holds it: a frozen holder must not keep it.
            await spec.Step($"first, the lower address, holder of the lease and owner of {key}'s partition, is frozen (SIGSTOP)", () =>
                SpecCluster.FreezeOutsideSqliteCommit(spec.Cluster, first));

            await spec.Step("second stays up, takes the lease and first's partitions, and acknowledges a newer write that reads back", async () =>
            {
                var deadline = DateTime.UtcNow.AddSeconds(30);
                Outcome<KeyVersion> write;
                do
                {
                    Assert.True(second.IsRunning, "second shut down instead of keeping the cluster (it lost the tie to the frozen first)");
                    write = await second.Client.PutAsync(key, Encoding.UTF8.GetBytes("after"));
                    if (!write.IsSuccess)
                    {
                        await Task.Delay(200);
                    }
                }
                while (!write.IsSuccess && DateTime.UtcNow < deadline);

                Assert.True(write.IsSuccess, $"{(int)write.Status} {write.Problem?.Detail}");
                Assert.True(write.Value!.Version > before.Value!.Version);
                var read = await second.Client.GetAsync(key);
                Assert.Equal((HttpStatusCode.OK, write.Value.Version), (read.Status, read.Value!.Version));
                Assert.Contains("SBR acquired lease", File.ReadAllText(second.LogFile), StringComparison.Ordinal);
            });

            await spec.Step("the frozen first is downed and ended by second's fence, never resumed; second serves on", async () =>
            {
                await spec.Barrier("first ended", ["first"], SpecCluster.HasExited);
                Assert.Equal(137, first.Process!.ExitCode);
                var read = await second.Client.GetAsync(key);
                Assert.Equal(HttpStatusCode.OK, read.Status);
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    private static async Task<string> KeyOwnedBy(ActorHa.Launcher.LocalNode owner, string prefix)
    {
        var view = await SpecCluster.ViewOf(owner);
        var map = new ActorHa.Domain.PartitionMap(view.Owners.Count);
        return Enumerable.Range(0, 10_000).Select(i => $"{prefix}{i}").First(k => view.Owners[map.For(k).Value] == owner.AkkaPort);
    }
}
