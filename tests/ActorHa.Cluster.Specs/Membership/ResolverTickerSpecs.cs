using System.Diagnostics;
using ActorHa.Cluster.Membership;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Membership;

/// <summary>
/// The resolver ticker: Akka's split-brain resolver decides only on its own 1 s tick, and the ticker sends it that tick
/// more often, so that a member that stopped answering is downed once the view has been stable for stable-after.
/// </summary>
public sealed class ResolverTickerSpecs(ITestOutputHelper output)
{
    [Fact]
    public void The_resolvers_tick_message_is_found_in_the_Akka_build_we_ship()
    {
        // An Akka upgrade that renames the message would quietly bring back the 1 s tick: this fails instead.
        var (tick, problem) = ResolverTicker.FindResolverTick();

        Assert.Null(problem);
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverBase+Tick", tick!.GetType().FullName);
    }

    [Fact]
    public void The_interval_comes_from_configuration_and_off_or_absent_leaves_Akkas_own_tick()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(100), ResolverTicker.IntervalFrom(ConfigurationFactory.ParseString("actorha.split-brain-resolver.tick-interval = 100ms")));
        Assert.Null(ResolverTicker.IntervalFrom(ConfigurationFactory.ParseString("actorha.split-brain-resolver.tick-interval = off")));
        Assert.Null(ResolverTicker.IntervalFrom(ConfigurationFactory.Empty));
        Assert.Throws<ConfigurationException>(() => ResolverTicker.IntervalFrom(ConfigurationFactory.ParseString("actorha.split-brain-resolver.tick-interval = 0s")));
    }

    [Fact]
    public void The_shipped_configuration_ticks_the_resolver_ten_times_a_second()
    {
        var shipped = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "hocon", "actorha.conf")));

        Assert.Equal(TimeSpan.FromMilliseconds(100), ResolverTicker.IntervalFrom(shipped));
    }

    [Fact]
    public async Task A_member_that_stopped_answering_is_downed_within_a_tick_of_stable_after()
    {
        // arrange: a member with the resolver (stable-after 100 ms) and a ticker every 50 ms. Without the ticker the
        // resolver decides on its own 1 s tick: each downing then comes 0.1-1.1 s after the unreachability (the peer
        // stops at a random point of that tick's second), and five in a row all within 0.5 s happen about one time in a hundred.
        // With it each comes 0.1-0.2 s after (measured here: 109-168 ms).
        // As a node does (NodeHost): at least 32 pool threads. The peers here share this process, and a peer's shutdown
        // holds pool threads. With the default minimum, the survivor's actors stalled for up to a second: a local run
        // logged "heartbeat was delayed … 1000 ms", and that warning was gone in three runs with this minimum. One CI
        // run saw a downing 1,000 ms after the unreachability, likely from such a stall.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
        var survivor = ActorSystem.Create("ticker", Config());
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(survivor);
            await InProcessMembers.JoinAndWaitUp(survivor, cluster.SelfAddress);
            var (tick, _) = ResolverTicker.FindResolverTick();
            survivor.ActorOf(Props.Create(() => new ResolverTicker(TimeSpan.FromMilliseconds(50), tick!)), "resolver-ticker");
            var gaps = new List<TimeSpan>();

            for (var episode = 0; episode < 5; episode++)
            {
                // act: a second member joins, then its system stops without leaving (as a crashed or frozen process would)
                var peer = ActorSystem.Create("ticker", Config());
                var peerAddress = Akka.Cluster.Cluster.Get(peer).SelfAddress;
                await InProcessMembers.JoinAndWaitUp(peer, cluster.SelfAddress);
                AwaitCondition(() => cluster.State.Members.Any(m => m.Address.Equals(peerAddress) && m.Status == MemberStatus.Up));
                var unreachableAt = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
                var downedAt = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
                var seen = new System.Collections.Concurrent.ConcurrentQueue<(long At, string Event)>();
                var watcher = survivor.ActorOf(Props.Create(() => new MemberEvents(peerAddress, unreachableAt, downedAt, seen)));
                await Task.Delay(Random.Shared.Next(1000));
                await peer.Terminate();

                // assert
                var unreachable = await unreachableAt.Task.WaitAsync(TimeSpan.FromSeconds(10));
                var downed = await downedAt.Task.WaitAsync(TimeSpan.FromSeconds(10));
                var gap = Stopwatch.GetElapsedTime(unreachable, downed);
                output.WriteLine($"episode {episode}: downed {gap.TotalMilliseconds:0} ms after it became unreachable");
                // What the survivor saw, relative to the unreachability: one CI run downed the peer in one episode only
                // after Akka's own 1 s, and these lines are to tell why if it happens again.
                output.WriteLine("  " + string.Join("; ", seen.Select(e => $"{Stopwatch.GetElapsedTime(unreachable, e.At).TotalMilliseconds:+0;-0} ms {e.Event}")));
                gaps.Add(gap);
                survivor.Stop(watcher);
                AwaitCondition(() => cluster.State.Members.All(m => !m.Address.Equals(peerAddress)));
            }

            Assert.All(gaps, gap => Assert.True(gap < TimeSpan.FromMilliseconds(500), $"downed {gap.TotalMilliseconds:0} ms after the unreachability; stable-after is 100 ms and the ticker ticks every 50 ms"));
        }
        finally
        {
            await survivor.Terminate();
        }
    }

    private static Config Config() => InProcessMembers.Config("""
        downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
        split-brain-resolver {
          # The side of the oldest member (the survivor, which formed the cluster) stays, even alone: it downs the peer.
          active-strategy = keep-oldest
          keep-oldest.down-if-alone = off
          stable-after = 100ms
        }
        """);

    private static void AwaitCondition(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new TimeoutException("condition not met within 10 s");
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>Records when the peer became unreachable and when it was downed (Stopwatch timestamps).</summary>
    private sealed class MemberEvents : ReceiveActor
    {
        public MemberEvents(Address peer, TaskCompletionSource<long> unreachableAt, TaskCompletionSource<long> downedAt, System.Collections.Concurrent.ConcurrentQueue<(long At, string Event)> seen)
        {
            Receive<ClusterEvent.IClusterDomainEvent>(e =>
            {
                if (e is ClusterEvent.LeaderChanged or ClusterEvent.IReachabilityEvent or ClusterEvent.IMemberEvent)
                {
                    seen.Enqueue((Stopwatch.GetTimestamp(), e.ToString() ?? e.GetType().Name));
                }

                return false;
            });
            Receive<ClusterEvent.UnreachableMember>(e =>
            {
                if (e.Member.Address.Equals(peer))
                {
                    unreachableAt.TrySetResult(Stopwatch.GetTimestamp());
                }
            });
            Receive<ClusterEvent.MemberDowned>(e =>
            {
                if (e.Member.Address.Equals(peer))
                {
                    downedAt.TrySetResult(Stopwatch.GetTimestamp());
                }
            });
            ReceiveAny(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.LeaderChanged));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }
}
