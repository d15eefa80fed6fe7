using System.Diagnostics;
using ActorHa.Cluster.Forwarding;
using ActorHa.Cluster.Partitions;
using ActorHa.Domain;
using Akka.Actor;
using Akka.TestKit;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs.Forwarding;

/// <summary>
/// The forwarder of one node, on a real cluster-provider actor system, with test probes standing in for its local
/// partitions and for the forwarder of the node that sent the requests.
/// </summary>
public sealed class PartitionForwarderSpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(Hocon, output)
{
    private const string Hocon = """
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        akka.loglevel = INFO
        """;

    private static readonly PartitionMap Map = new(8);
    private readonly LocalPartitions _local = new(Map);
    private readonly RemoteOwners _owners = new(Map);

    private IActorRef StartForwarder(TimeSpan? replyTimeout = null) =>
        Sys.ActorOf(PartitionForwarder.Props(Map, _local, _owners, replyTimeout ?? TimeSpan.FromSeconds(5)));

    private static string KeyIn(int partition) =>
        Enumerable.Range(0, 10_000).Select(i => $"key-{i}").First(k => Map.For(k).Value == partition);

    private TestProbe PartitionProbe(int partition)
    {
        var probe = CreateTestProbe();
        _local.Register(new PartitionId(partition), probe.Ref);
        return probe;
    }

    private List<ForwardedReply> ReplyItems(TestProbe origin, int count)
    {
        var items = new List<ForwardedReply>();
        while (items.Count < count)
        {
            items.AddRange(origin.ExpectMsg<ReplyBatch>().Items);
        }

        return items;
    }

    [Fact]
    public void A_batch_is_cut_before_it_would_outgrow_the_budget_and_an_item_is_never_held_back()
    {
        var outbox = new PartitionForwarder.Outbox<int>();
        var large = (PartitionForwarder.MaxBatchBytes / 2) + 1;

        var afterFirst = outbox.Add(1, large);
        var afterSecond = outbox.Add(2, large);
        var afterSmall = outbox.Add(3, 10);
        var afterThird = outbox.Add(4, large);
        var rest = outbox.TakeAll();

        Assert.Null(afterFirst);
        Assert.Equal([1], afterSecond);
        Assert.Null(afterSmall);
        Assert.Equal([2, 3], afterThird);
        Assert.Equal([4], rest);
        Assert.Null(outbox.TakeAll());
    }

    [Fact]
    public void A_forwarded_batch_reaches_the_local_partitions_and_every_reply_goes_back_with_its_own_request_id()
    {
        // arrange
        var forwarder = StartForwarder();
        var (one, two) = (PartitionProbe(1), PartitionProbe(2));
        var origin = CreateTestProbe();
        var (k1, k2) = (KeyIn(1), KeyIn(2));

        // act: both requests in one batch; the partitions answer in the opposite order
        forwarder.Tell(new ForwardBatch([new ForwardedRequest(10, new Commands.Put(k1, [1])), new ForwardedRequest(11, new Queries.Get(k2))]), origin.Ref);
        one.ExpectMsg<Commands.Put>(p => p.Key == k1);
        var putSender = one.LastSender;
        two.ExpectMsg<Queries.Get>(g => g.Key == k2);
        two.LastSender.Tell(new Replies.NotFound(k2));
        putSender.Tell(new Replies.Written(k1, 1, Created: true));

        // assert
        var replies = ReplyItems(origin, 2).ToDictionary(r => r.Id, r => r.Reply);
        Assert.Equal(new Replies.Written(k1, 1, Created: true), replies[10]);
        Assert.Equal(new Replies.NotFound(k2), replies[11]);
    }

    [Fact]
    public void A_request_for_a_partition_that_does_not_run_on_the_node_is_answered_unavailable_at_once_and_handed_to_nobody()
    {
        // arrange
        var forwarder = StartForwarder();
        var elsewhere = PartitionProbe(4);
        var origin = CreateTestProbe();

        // act
        forwarder.Tell(new ForwardBatch([new ForwardedRequest(5, new Queries.Get(KeyIn(3)))]), origin.Ref);

        // assert
        var reply = Assert.Single(ReplyItems(origin, 1));
        Assert.Equal(5, reply.Id);
        Assert.IsType<Replies.Unavailable>(reply.Reply);
        elsewhere.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task A_request_forwarded_to_a_node_that_never_answers_completes_unavailable_once_the_reply_timeout_has_passed()
    {
        // arrange: nothing listens at that address
        var forwarder = StartForwarder(replyTimeout: TimeSpan.FromMilliseconds(400));
        var reply = new TaskCompletionSource<IPartitionReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        var clock = Stopwatch.StartNew();

        // act
        forwarder.Tell(new PartitionForwarder.Forward(new Address("akka.tcp", "nobody", "127.0.0.1", 1), new Queries.Get(KeyIn(1)), reply));
        var answer = await reply.Task.WaitAsync(TimeSpan.FromSeconds(5));

        // assert: not before the timeout (a slow node must get its chance), and not much after it
        Assert.IsType<Replies.Unavailable>(answer);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(380), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void A_node_that_announces_a_partition_becomes_its_owner_and_stops_being_it_once_it_no_longer_announces_it()
    {
        // arrange
        var forwarder = StartForwarder();
        var peer = CreateTestProbe();

        // act
        forwarder.Tell(new PartitionsHere([1, 2]), peer.Ref);

        // assert
        AwaitAssert(() => Assert.Equal(peer.Ref.Path.Address, _owners.For(new PartitionId(1))));
        Assert.Null(_owners.For(new PartitionId(3)));

        // act: partition 1 moved away from that node
        forwarder.Tell(new PartitionsHere([2]), peer.Ref);

        // assert
        AwaitAssert(() => Assert.Null(_owners.For(new PartitionId(1))));
        Assert.Equal(peer.Ref.Path.Address, _owners.For(new PartitionId(2)));
    }
}
