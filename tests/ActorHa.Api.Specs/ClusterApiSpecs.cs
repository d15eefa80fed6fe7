using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace ActorHa.Api.Specs;

[Collection(SqliteNodeCollection.Name)]
public sealed class SqliteClusterApiSpecs(SqliteNodeFixture node) : ClusterApiSpecs(node);

[Collection(PostgresNodeCollection.Name)]
public sealed class PostgresClusterApiSpecs(PostgresNodeFixture node) : ClusterApiSpecs(node);

/// <summary>Run against one node on each store.</summary>
public abstract class ClusterApiSpecs(NodeFixture node)
{
    [Fact]
    public async Task The_cluster_view_lists_this_member_Up_and_an_owner_for_every_partition()
    {
        using var doc = await node.Client.ClusterAsync();
        var root = doc.RootElement;

        var member = Assert.Single(root.GetProperty("members").EnumerateArray());
        Assert.Equal("Up", member.GetProperty("status").GetString());
        Assert.True(member.GetProperty("reachable").GetBoolean());
        Assert.True(member.GetProperty("isSelf").GetBoolean());
        Assert.Contains("kv", member.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.NotEqual(JsonValueKind.Null, member.GetProperty("upSince").ValueKind);

        var partitions = root.GetProperty("partitions").EnumerateArray().ToList();
        Assert.Equal(32, partitions.Count);
        Assert.All(partitions, p =>
        {
            Assert.Equal(member.GetProperty("address").GetString(), p.GetProperty("owner").GetString());
            Assert.Equal("running", p.GetProperty("state").GetString());
        });
    }

    [Fact]
    public async Task The_cluster_view_tells_clients_which_HTTP_URL_serves_each_partition()
    {
        using var doc = await node.Client.ClusterAsync();
        var root = doc.RootElement;

        // the member publishes its advertised URL (here its listen URL), not as one of its roles
        var member = Assert.Single(root.GetProperty("members").EnumerateArray());
        Assert.Equal(node.Url, member.GetProperty("httpUrl").GetString());
        Assert.DoesNotContain(member.GetProperty("roles").EnumerateArray(), r => r.GetString()!.StartsWith("http=", StringComparison.Ordinal));
        Assert.All(root.GetProperty("partitions").EnumerateArray(), p => Assert.Equal(node.Url, p.GetProperty("ownerHttpUrl").GetString()));

        // and a client routes every key there
        var routes = ActorHa.Client.OwnerRoutes.From(doc);
        Assert.Equal(32, routes.Routed);
        Assert.Equal(node.Url, routes.UrlFor("greeting"));
        Assert.Equal(node.Url, routes.UrlFor("a/b/c"));
    }

    [Fact]
    public async Task Liveness_and_readiness_answer_200_when_the_node_serves()
    {
        using var live = await node.Http.GetAsync("healthz/live");
        using var ready = await node.Http.GetAsync("healthz/ready");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
    }

    [Fact]
    public async Task Without_fault_injection_the_network_fault_endpoints_do_not_exist()
    {
        using var cut = await node.Http.PutAsync("v1/faults/network/127.0.0.1:1", content: null);
        using var list = await node.Http.GetAsync("v1/faults/network/");

        Assert.Equal(HttpStatusCode.NotFound, cut.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, list.StatusCode);
    }
}
