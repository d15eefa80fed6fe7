using System.Diagnostics;
using ActorHa.Cluster.Partitions;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Configuration;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Partitions;

/// <summary>
/// The coordinator wake-up: a shard coordinator that takes over from a downed node answers as soon as it has read its
/// state, instead of after Akka's fixed 500 ms.
/// </summary>
public sealed class CoordinatorWakeUpSpecs(ITestOutputHelper output)
{
    private const string TypeName = "echo";

    [Fact]
    public void The_coordinators_message_is_found_in_the_Akka_build_we_ship()
    {
        // An Akka upgrade that renames the message would quietly bring back the 500 ms: this fails instead.
        var (message, problem) = CoordinatorWakeUp.FindStateInitialized();

        Assert.Null(problem);
        Assert.Equal("Akka.Cluster.Sharding.ShardCoordinator+StateInitialized", message!.GetType().FullName);
    }

    [Fact]
    public void The_shipped_configuration_wakes_new_coordinators_and_the_stock_profile_does_not()
    {
        var hocon = Path.Combine(AppContext.BaseDirectory, "hocon");
        var shipped = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(hocon, "actorha.conf")));
        var stock = ConfigurationFactory.ParseString(File.ReadAllText(Path.Combine(hocon, "profiles", "akka-defaults.conf"))).WithFallback(shipped);

        Assert.True(shipped.GetBoolean(CoordinatorWakeUp.Setting, false));
        Assert.False(stock.GetBoolean(CoordinatorWakeUp.Setting, true));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_coordinator_that_takes_over_from_a_downed_node_answers_without_Akkas_500_ms_wait(bool wakeUp)
    {
        // arrange: two members with sharding; the first (the oldest) runs the coordinator, and shards live on both
        var first = ActorSystem.Create("wake", Config());
        var second = ActorSystem.Create("wake", Config());
        try
        {
            await InProcessMembers.JoinAndWaitUp(first, Akka.Cluster.Cluster.Get(first).SelfAddress);
            await InProcessMembers.JoinAndWaitUp(second, Akka.Cluster.Cluster.Get(first).SelfAddress);
            StartSharding(first);
            var region = StartSharding(second);
            if (wakeUp)
            {
                var (message, _) = CoordinatorWakeUp.FindStateInitialized();
                second.ActorOf(Props.Create(() => new CoordinatorWakeUp(TypeName, message!)), CoordinatorWakeUp.Name);
            }

            for (var i = 0; i < 10; i++)
            {
                await region.Ask<Address>(new Where($"before-{i}"), TimeSpan.FromSeconds(10));
            }

            var firstAddress = Akka.Cluster.Cluster.Get(first).SelfAddress;
            var removedAt = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            second.ActorOf(Props.Create(() => new RemovalWatch(firstAddress, removedAt)));

            // act: the first member stops without leaving and is downed; once it is removed the coordinator starts on
            // the second, and a shard that was never allocated is asked for
            await first.Terminate();
            Akka.Cluster.Cluster.Get(second).Down(firstAddress);
            var removed = await removedAt.Task.WaitAsync(TimeSpan.FromSeconds(15));
            var answeredBy = await region.Ask<Address>(new Where("after"), TimeSpan.FromSeconds(10));
            var took = Stopwatch.GetElapsedTime(removed);
            output.WriteLine($"wake-up {(wakeUp ? "on" : "off")}: a new shard answered {took.TotalMilliseconds:0} ms after the removal");

            // assert: Akka's wait alone is 500 ms after the coordinator has read its state, which comes after the removal
            Assert.Equal(Akka.Cluster.Cluster.Get(second).SelfAddress, answeredBy);
            if (wakeUp)
            {
                Assert.True(took < TimeSpan.FromMilliseconds(450), $"answered {took.TotalMilliseconds:0} ms after the removal");
            }
            else
            {
                Assert.True(took >= TimeSpan.FromMilliseconds(500), $"without the wake-up Akka's 500 ms wait applies, yet it answered after {took.TotalMilliseconds:0} ms");
            }
        }
        finally
        {
            await Task.WhenAll(first.Terminate(), second.Terminate());
        }
    }

    private static IActorRef StartSharding(ActorSystem system) =>
        ClusterSharding.Get(system).Start(TypeName, Props.Create(() => new Echo()), ClusterShardingSettings.Create(system), new Extractor());

    private static Config Config() => InProcessMembers.Config("""
        singleton.hand-over-retry-interval = 100ms
        sharding {
          state-store-mode = ddata
          remember-entities = off
          retry-interval = 100ms
          coordinator-state {
            write-majority-plus = 0
            read-majority-plus = 0
          }
        }
        """).WithFallback(ClusterSharding.DefaultConfig());

    private sealed record Where(string Entity);

    private sealed class Echo : ReceiveActor
    {
        public Echo() => Receive<Where>(_ => Sender.Tell(Akka.Cluster.Cluster.Get(Context.System).SelfAddress));
    }

    private sealed class Extractor() : HashCodeMessageExtractor(10)
    {
        public override string EntityId(object message) => ((Where)message).Entity;

        public override object EntityMessage(object message) => message;
    }

    /// <summary>Records when <paramref name="member"/> is removed (a Stopwatch timestamp).</summary>
    private sealed class RemovalWatch : ReceiveActor
    {
        public RemovalWatch(Address member, TaskCompletionSource<long> removedAt)
        {
            Receive<ClusterEvent.MemberRemoved>(e =>
            {
                if (e.Member.Address.Equals(member))
                {
                    removedAt.TrySetResult(Stopwatch.GetTimestamp());
                }
            });
            ReceiveAny(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberRemoved));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
    }
}
