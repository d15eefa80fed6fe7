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
    public void A_value_larger_than_the_remote_limit_goes_back_as_a_pointer_to_this_nodes_http_api_and_one_at_the_limit_as_it_is()
    {
        // arrange: a forwarder whose node's API other nodes reach at http://node1:8080, with a 1 KiB limit
        var forwarder = Sys.ActorOf(PartitionForwarder.Props(Map, _local, _owners, TimeSpan.FromSeconds(5), large: new LargeValueReplies("http://node1:8080", 1024)));
        var partition = PartitionProbe(1);
        var origin = CreateTestProbe();
        var (big, edge) = (KeyIn(1), Enumerable.Range(0, 10_000).Select(i => $"other-{i}").First(k => Map.For(k).Value == 1));
        var at = DateTimeOffset.UnixEpoch;

        // act
        forwarder.Tell(new ForwardBatch([new ForwardedRequest(1, new Queries.Get(big)), new ForwardedRequest(2, new Queries.Get(edge))]), origin.Ref);
        partition.ExpectMsg<Queries.Get>();
        partition.LastSender.Tell(new Replies.Found(big, new byte[1025], 7, at, at));
        partition.ExpectMsg<Queries.Get>();
        partition.LastSender.Tell(new Replies.Found(edge, new byte[1024], 3, at, at));

        // assert: the bytes of the large one never enter the batch
        var replies = ReplyItems(origin, 2).ToDictionary(r => r.Id, r => r.Reply);
        Assert.Equal(new Replies.FetchFromOwner(big, 7, 1025, "http://node1:8080"), replies[1]);
        Assert.Equal(1024, Assert.IsType<Replies.Found>(replies[2]).Value.Length);
    }

    [Fact]
    public void A_large_value_goes_as_it_is_to_a_caller_on_the_same_node_and_as_a_pointer_to_one_on_another()
    {
        var large = new LargeValueReplies("http://node1:8080", 1024);
        var found = new Replies.Found("k", new byte[4096], 2, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);
        var remote = ((ExtendedActorSystem)Sys).Provider.ResolveActorRef(new RootActorPath(new Address("akka.tcp", "actorha", "10.0.0.9", 4053)) / "temp" / "x");

        Assert.Same(found, large.For(TestActor, found));
        Assert.Equal(new Replies.FetchFromOwner("k", 2, 4096, "http://node1:8080"), large.For(remote, found));
        Assert.Same(found, new LargeValueReplies(null, 1024).For(remote, found));
        var notFound = new Replies.NotFound("k");
        Assert.Same(notFound, large.For(remote, notFound));
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
