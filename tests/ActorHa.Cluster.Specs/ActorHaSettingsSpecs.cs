namespace ActorHa.Cluster.Specs;

public sealed class ActorHaSettingsSpecs
{
    [Theory]
    [InlineData("127.0.0.1:4051", "127.0.0.1", 4051)]
    [InlineData("node-2.actorha.svc:4052", "node-2.actorha.svc", 4052)]
    [InlineData("localhost:1", "localhost", 1)]
    [InlineData("::1:9153", "::1", 9153)]
    [InlineData("[::1]:9153", "[::1]", 9153)]
    public void A_host_and_port_that_remoting_can_address_are_read(string text, string host, int port)
    {
        Assert.True(ActorHaSettings.TryParseHostPort(text, out var readHost, out var readPort));
        Assert.Equal((host, port), (readHost, readPort));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData(":4051")]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("host:-1")]
    [InlineData("host: 4051")]
    [InlineData("host:+4051")]
    [InlineData("a b:4051")]
    [InlineData("a\u0001b:4051")]
    [InlineData("a:1:2")]
    [InlineData("under_score!:4051")]
    public void Anything_else_is_not_a_host_and_port(string text)
    {
        Assert.False(ActorHaSettings.TryParseHostPort(text, out _, out _));
    }

    [Fact]
    public void A_host_name_longer_than_dns_allows_is_not_a_host_and_port()
    {
        Assert.False(ActorHaSettings.TryParseHostPort(new string('a', 3000) + ":4051", out _, out _));
    }
}
