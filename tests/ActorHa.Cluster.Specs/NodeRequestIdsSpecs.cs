namespace ActorHa.Cluster.Specs;

public sealed class NodeRequestIdsSpecs
{
    [Fact]
    public void A_nodes_request_ids_share_its_prefix_and_count_up_without_repeating_across_threads()
    {
        var ids = new System.Collections.Concurrent.ConcurrentBag<Guid>();
        Parallel.For(0, 4, _ =>
        {
            for (var i = 0; i < 10_000; i++)
            {
                ids.Add(NodeRequestIds.Next());
            }
        });

        Assert.Equal(40_000, ids.Distinct().Count());
        var halves = ids.Select(id => id.ToByteArray()).Select(b => (Prefix: BitConverter.ToUInt64(b, 0), Counter: BitConverter.ToUInt64(b, 8))).ToList();
        Assert.Single(halves.Select(h => h.Prefix).Distinct());
        // Consecutive counters: the snapshot encoding stores a node's ids as small steps.
        var counters = halves.Select(h => h.Counter).Order().ToList();
        Assert.Equal(counters[0] + 39_999, counters[^1]);
    }

    [Fact]
    public void An_id_is_its_prefix_then_its_counter_each_little_endian()
    {
        var id = NodeRequestIds.Make(0x1122334455667788, 5);

        Assert.Equal("88776655443322110500000000000000", Convert.ToHexString(id.ToByteArray()));
    }
}
