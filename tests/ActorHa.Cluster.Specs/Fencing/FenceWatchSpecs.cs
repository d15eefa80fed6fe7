using System.Diagnostics;
using ActorHa.Cluster.Fencing;
using ActorHa.Cluster.Leases;
using ActorHa.Launcher;
using Akka.Actor;
using Akka.Cluster;

namespace ActorHa.Cluster.Specs.Fencing;

/// <summary>The fence's rule on real processes of this host: a child `sleep` stands in for a downed member's node.</summary>
public sealed class FenceWatchSpecs : IDisposable
{
    private static readonly UniqueAddress Member = new(new Address("akka.tcp", "actorha", "127.0.0.1", 4053), 42);
    private static readonly DateTime Now = new(2026, 11, 27, 12, 0, 0, DateTimeKind.Utc);

    private readonly Process _child = Process.Start(new ProcessStartInfo("sleep", "120") { UseShellExecute = false })!;

    public void Dispose()
    {
        if (!_child.HasExited)
        {
            _child.Kill();
            _child.WaitForExit();
        }

        _child.Dispose();
    }

    [Fact]
    public void A_downed_member_stopped_on_this_host_whose_lease_expired_is_ended()
    {
        // arrange
        var watch = new FenceWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);

        // act
        Assert.True(watch.Consider(Member, RolesOf(ChildIdentity()), Now));
        var events = watch.Sweep([], Now);

        // assert
        Assert.Equal(FenceAction.Killed, Assert.Single(events).Action);
        Assert.True(_child.WaitForExit(TimeSpan.FromSeconds(10)), "the stopped child is still there");
        Assert.Equal(137, _child.ExitCode);
        Assert.Equal(0, watch.Count);
    }

    [Fact]
    public void A_stopped_member_whose_lease_is_still_live_is_left_alone_until_it_expires()
    {
        // arrange
        var watch = new FenceWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        watch.Consider(Member, RolesOf(ChildIdentity()), Now);

        // act: its lease (any generation) is live, as another member's is
        var whileLive = watch.Sweep(["127.0.0.1:4051#7/1", LeaseSetup.NodeLeaseBase(Member) + "/3"], Now);

        // assert
        Assert.Empty(whileLive);
        Assert.False(_child.HasExited);
        Assert.Equal(1, watch.Count);

        // and once only the other member's lease is live, it is ended
        Assert.Equal(FenceAction.Killed, Assert.Single(watch.Sweep(["127.0.0.1:4051#7/1"], Now)).Action);
        Assert.True(_child.WaitForExit(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_downed_member_whose_process_runs_is_left_to_shut_itself_down_and_dropped_after_the_give_up_time()
    {
        // arrange
        var watch = new FenceWatch(ProcessIdentity.Current!);
        watch.Consider(Member, RolesOf(ChildIdentity()), Now);

        // act
        var soon = watch.Sweep([], Now.AddSeconds(5));
        var late = watch.Sweep([], Now + FenceWatch.GiveUpAfter);

        // assert
        Assert.Empty(soon);
        Assert.Equal(FenceAction.GaveUp, Assert.Single(late).Action);
        Assert.False(_child.HasExited);
        Assert.Equal(0, watch.Count);
    }

    [Fact]
    public void A_member_whose_process_exited_is_dropped_without_a_signal()
    {
        // arrange
        var kills = 0;
        var watch = new FenceWatch(ProcessIdentity.Current!, p => { kills++; return HostProcesses.Kill(p); });
        watch.Consider(Member, RolesOf(ChildIdentity()), Now);
        _child.Kill();
        _child.WaitForExit();

        // act
        var events = watch.Sweep([], Now);

        // assert
        Assert.Equal(FenceAction.Exited, Assert.Single(events).Action);
        Assert.Equal(0, kills);
    }

    [Fact]
    public void A_process_that_only_shares_the_member_pid_is_never_taken_for_it()
    {
        // arrange: the member's identity names the child's PID but another start time, as after PID reuse
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        var reused = ChildIdentity() with { StartTicks = ChildIdentity().StartTicks + 1 };
        var watch = new FenceWatch(ProcessIdentity.Current!);

        // act
        var watched = watch.Consider(Member, RolesOf(reused), Now);
        var (outcome, _) = HostProcesses.Kill(reused);

        // assert
        Assert.False(watched);
        Assert.Equal(KillOutcome.Gone, outcome);
        Assert.False(_child.HasExited);
        Assert.True(HostProcesses.ReadStat(_child.Id)!.Value.IsStopped);
    }

    [Fact]
    public void Members_of_another_boot_or_pid_namespace_or_without_an_identity_are_never_watched()
    {
        var watch = new FenceWatch(ProcessIdentity.Current!);
        var child = ChildIdentity();

        Assert.False(watch.Consider(Member, RolesOf(child with { BootId = "00000000-0000-0000-0000-000000000000" }), Now));
        Assert.False(watch.Consider(Member, RolesOf(child with { PidNamespace = "1" }), Now));
        Assert.False(watch.Consider(Member, ["kv", "http=http://127.0.0.1:8083"], Now));
        Assert.False(watch.Consider(Member, RolesOf(ProcessIdentity.Current!), Now));
        Assert.Equal(0, watch.Count);
    }

    private ProcessIdentity ChildIdentity()
    {
        var self = ProcessIdentity.Current!;
        return self with { Pid = _child.Id, StartTicks = HostProcesses.ReadStat(_child.Id)!.Value.StartTicks };
    }

    private static string[] RolesOf(ProcessIdentity identity) => ["kv", "http=http://127.0.0.1:8083", identity.Role];

    private static void WaitForState(int pid, bool stopped)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (HostProcesses.ReadStat(pid)?.IsStopped != stopped)
        {
            Assert.True(DateTime.UtcNow < deadline, $"process {pid} did not become {(stopped ? "stopped" : "running")}");
            Thread.Sleep(10);
        }
    }
}
