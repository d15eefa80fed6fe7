using ActorHa.Domain;

namespace ActorHa.Domain.Specs;

public sealed class PartitionMapSpecs
{
    [Theory]
    // Published FNV-1a 64-bit test vectors: the hash is part of the on-disk contract.
    [InlineData("", 0xcbf29ce484222325UL)]
    [InlineData("a", 0xaf63dc4c8601ec8cUL)]
    [InlineData("foobar", 0x85944171f73967e8UL)]
    public void The_key_hash_is_FNV_1a_64_over_UTF_8(string key, ulong expected)
    {
        Assert.Equal(expected, PartitionMap.Fnv1a64(key));
    }

    [Fact]
    public void A_key_always_maps_to_the_same_partition_of_32()
    {
        // arrange
        var map = new PartitionMap(32);

        // act / assert: values computed once from the published algorithm; a change here moves keys between journals.
        Assert.Equal(new PartitionId((int)(0xaf63dc4c8601ec8cUL % 32)), map.For("a"));
        Assert.Equal(new PartitionId((int)(0x85944171f73967e8UL % 32)), map.For("foobar"));
        Assert.Equal(map.For("user/42"), new PartitionMap(32).For("user/42"));
    }

    [Fact]
    public void Non_ASCII_keys_hash_their_UTF_8_bytes_including_long_keys()
    {
        var shortKey = "clé-ü-日本";
        var longKey = new string('é', 300);

        Assert.Equal(ReferenceFnv(System.Text.Encoding.UTF8.GetBytes(shortKey)), PartitionMap.Fnv1a64(shortKey));
        Assert.Equal(ReferenceFnv(System.Text.Encoding.UTF8.GetBytes(longKey)), PartitionMap.Fnv1a64(longKey));
    }

    [Fact]
    public void Keys_spread_over_every_partition()
    {
        var map = new PartitionMap(32);

        var counts = Enumerable.Range(0, 10_000).GroupBy(i => map.For($"key-{i}")).ToDictionary(g => g.Key, g => g.Count());

        Assert.Equal(32, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 200, 450));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(PartitionMap.MaxPartitionCount + 1)]
    public void A_partition_count_out_of_range_is_refused(int count)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PartitionMap(count));
    }

    private static ulong ReferenceFnv(byte[] bytes)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return hash;
    }
}
