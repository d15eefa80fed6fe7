using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// A node that restarts joins the cluster that runs. Akka's first seed node joins itself when no other seed answers
/// within seed-node-timeout (3 s); restarted while the others ran but did not answer in time, it became a cluster of
/// one beside them, and a CI run's spec waited a minute for it to come back (Membership/SeedJoin).
/// </summary>
public sealed class RejoinSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task The_first_seed_restarted_while_the_running_members_do_not_answer_waits_for_them_instead_of_starting_a_cluster_of_its_own()
    {
        await using var spec = new SpecCluster(output, faultInjection: true);
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());
            var first = spec["first"];

            await spec.Step("first, the first seed of every node, is killed (kill -9) and removed by second and third", async () =>
            {
                spec.Kill("first");
                await spec.Barrier("two members", ["second", "third"], spec.SeesMembers("second", "third"), TimeSpan.FromSeconds(30));
            });

            await spec.Step("second and third drop everything from first's address, and first restarts into that silence", async () =>
            {
                await spec.CutAt("second", "first");
                await spec.CutAt("third", "first");
                spec.Restart("first");
                await spec.Barrier("first answers HTTP", ["first"], async (node, ct) =>
                {
                    await SpecCluster.ViewOf(node, ct);
                    return true;
                });
            });

            await spec.Step("for twice Akka's seed-node-timeout first is a member of no cluster, rather than one of its own", async () =>
            {
                var until = DateTime.UtcNow.AddSeconds(6);
                while (DateTime.UtcNow < until)
                {
                    var view = await SpecCluster.ViewOf(first);
                    Assert.True(view.All.Count == 0, $"first is a member of a cluster of [{string.Join(", ", view.All)}] while second and third run");
                    await Task.Delay(250);
                }

                Assert.Contains("will not start a cluster of its own while one runs", await File.ReadAllTextAsync(first.LogFile));
            });

            await spec.Step("once the links heal, first joins second and third", async () =>
            {
                await spec.Heal();
                // first's association attempts that the cut swallowed fail only after Akka's handshake-timeout (15 s),
                // and the address is then gated for 5 s, so the join can take ~20 s after the heal (~18 s measured).
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
    public async Task A_first_seed_whose_cluster_is_gone_by_the_time_it_restarts_starts_a_cluster_again()
    {
        await using var spec = new SpecCluster(output);
        try
        {
            await spec.Step("first, second and third form a cluster", () => spec.StartAll());

            await spec.Step("all three are killed (kill -9) and started again at once", async () =>
            {
                foreach (var role in spec.Roles)
                {
                    spec.Kill(role);
                }

                foreach (var role in spec.Roles)
                {
                    spec.Restart(role);
                }

                await spec.Barrier("formed again", spec.Roles, spec.SeesMembers([.. spec.Roles]), TimeSpan.FromSeconds(60));
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }
}
