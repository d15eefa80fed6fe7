using System.Diagnostics;
using ActorHa.Cluster.Fencing;
using ActorHa.Launcher;
using Akka.Actor;
using Akka.Cluster;

namespace ActorHa.Cluster.Specs.Fencing;

/// <summary>
/// The file-lock fence's rule on real processes of this host: a child `flock -F … sleep` holds an exclusive lock on a
/// file, as a node stopped inside a lease transaction holds the lease file's, and /proc/locks names it.
/// </summary>
public sealed class LockHolderWatchSpecs : IDisposable
{
    private static readonly UniqueAddress Member = new(new Address("akka.tcp", "actorha", "127.0.0.1", 4053), 42);

    private readonly string _file = Path.Combine(Path.GetTempPath(), $"actorha-lock-spec-{Guid.NewGuid():N}");
    private readonly Process _child;

    public LockHolderWatchSpecs()
    {
        File.WriteAllText(_file, "");
        // -F: the lock is taken by flock itself, which then becomes `sleep` (same PID), so /proc/locks names the child.
        _child = Process.Start(new ProcessStartInfo("flock", ["-F", "-x", _file, "sleep", "120"]) { UseShellExecute = false })!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!Holders().Contains(_child.Id))
        {
            Assert.True(DateTime.UtcNow < deadline, "the child did not take its lock within 10 s");
            Thread.Sleep(10);
        }
    }

    public void Dispose()
    {
        if (!_child.HasExited)
        {
            _child.Kill();
            _child.WaitForExit();
        }

        _child.Dispose();
        File.Delete(_file);
    }

    [Fact]
    public void A_member_stopped_while_holding_the_lock_is_ended_at_the_second_check_that_finds_it_stopped()
    {
        // arrange
        var watch = new LockHolderWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);

        // act
        var first = watch.Check(Holders(), MembersWith(ChildIdentity()));
        var second = watch.Check(Holders(), MembersWith(ChildIdentity()));

        // assert
        Assert.Empty(first);
        Assert.Equal(new LockHolderEvent(_child.Id, Member, LockHolderAction.Killed), Assert.Single(second));
        Assert.True(_child.WaitForExit(TimeSpan.FromSeconds(10)), "the stopped child is still there");
        Assert.Equal(137, _child.ExitCode);
    }

    [Fact]
    public void A_member_stopped_only_for_an_instant_or_still_running_is_left_alone()
    {
        // arrange
        var watch = new LockHolderWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);

        // act: stopped at one check, running at the next (resumed), stopped again at the one after
        var stopped = watch.Check(Holders(), MembersWith(ChildIdentity()));
        Signals.Send(_child.Id, Signals.SigCont);
        WaitForState(_child.Id, stopped: false);
        var running = watch.Check(Holders(), MembersWith(ChildIdentity()));
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        var stoppedAgain = watch.Check(Holders(), MembersWith(ChildIdentity()));

        // assert
        Assert.Empty(stopped.Concat(running).Concat(stoppedAgain));
        Assert.False(_child.HasExited);
    }

    [Fact]
    public void A_check_after_a_reset_starts_over()
    {
        // arrange: the renewal went through between two checks, so the watch was reset
        var watch = new LockHolderWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        watch.Check(Holders(), MembersWith(ChildIdentity()));

        // act
        watch.Reset();
        var afterReset = watch.Check(Holders(), MembersWith(ChildIdentity()));

        // assert
        Assert.Empty(afterReset);
        Assert.False(_child.HasExited);
    }

    [Fact]
    public void A_stopped_holder_that_no_member_published_is_reported_and_never_signalled()
    {
        // arrange: no member names the child; another names its PID with another start time (as after PID reuse)
        var kills = 0;
        var watch = new LockHolderWatch(ProcessIdentity.Current!, HostProcesses.ReadStat, p => { kills++; return HostProcesses.Kill(p); });
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        var reused = ChildIdentity() with { StartTicks = ChildIdentity().StartTicks + 1 };

        // act
        var events = Enumerable.Range(0, 3).SelectMany(_ => watch.Check(Holders(), [])).ToList();
        events.AddRange(Enumerable.Range(0, 3).SelectMany(_ => watch.Check(Holders(), MembersWith(reused))));

        // assert
        Assert.Equal(6, events.Count);
        Assert.All(events, e => Assert.Equal(new LockHolderEvent(_child.Id, null, LockHolderAction.NotAMember), e));
        Assert.Equal(0, kills);
        Assert.True(HostProcesses.ReadStat(_child.Id)!.Value.IsStopped);
    }

    [Fact]
    public void A_member_on_another_host_that_reuses_the_pid_is_never_taken_for_the_holder()
    {
        // arrange
        var watch = new LockHolderWatch(ProcessIdentity.Current!);
        Signals.Send(_child.Id, Signals.SigStop);
        WaitForState(_child.Id, stopped: true);
        var elsewhere = ChildIdentity() with { BootId = "00000000-0000-0000-0000-000000000000" };

        // act
        var events = Enumerable.Range(0, 3).SelectMany(_ => watch.Check(Holders(), MembersWith(elsewhere))).ToList();

        // assert
        Assert.All(events, e => Assert.Equal(LockHolderAction.NotAMember, e.Action));
        Assert.False(_child.HasExited);
    }

    private IReadOnlySet<int> Holders() => FileLocks.WriteLockHolders(FileLocks.Inodes(_file));

    private ProcessIdentity ChildIdentity() =>
        ProcessIdentity.Current! with { Pid = _child.Id, StartTicks = HostProcesses.ReadStat(_child.Id)!.Value.StartTicks };

    private static (UniqueAddress, IEnumerable<string>)[] MembersWith(ProcessIdentity identity) =>
        [(Member, ["kv", "http=http://127.0.0.1:8083", identity.Role]), (new UniqueAddress(Member.Address.WithPort(4051), 7), ["kv"])];

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
