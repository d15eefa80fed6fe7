using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ActorHa.Client;
using Microsoft.Extensions.DependencyInjection;

namespace ActorHa.Api.Specs;

/// <summary>One node that takes in one value's worth of bytes and one key listing at a time.</summary>
public sealed class LimitedNodeFixture : NodeFixture
{
    protected override IReadOnlyDictionary<string, string?> StoreSettings() => new Dictionary<string, string?>
    {
        ["ActorHa:MaxInFlightWriteBytes"] = MaxValueBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["ActorHa:MaxConcurrentLists"] = "1",
    };
}

/// <summary>More than a node takes on at once is answered at once with 503, and nothing of it is applied.</summary>
public sealed class AdmissionSpecs(LimitedNodeFixture node) : IClassFixture<LimitedNodeFixture>
{
    [Fact]
    public async Task A_put_beyond_the_bytes_a_node_takes_in_at_once_gets_503_overloaded_and_changes_nothing_and_goes_through_once_they_are_free()
    {
        // arrange: the node is taking in a full value already, as from a slow upload. (Made here through the node's own
        // admission: a real slow upload as the arrangement was at the mercy of when its request reached the handler, and
        // on a busy CI machine it did not within 10 s.)
        var admission = node.Services.GetRequiredService<ActorHa.Api.Admission>();
        Assert.True(admission.TryReserveWrite(NodeFixture.MaxValueBytes));
        var key = $"refused-{Guid.NewGuid():N}";
        HttpResponseMessage refused;
        try
        {
            // act: a small PUT meanwhile
            refused = await node.Http.PutAsync(ActorHaClient.KeyPath(key), new ByteArrayContent("small"u8.ToArray()));
        }
        finally
        {
            admission.ReleaseWrite(NodeFixture.MaxValueBytes);
        }

        // assert: 503 with Retry-After and the overloaded problem; nothing was written; with the bytes free, the same PUT
        // goes through
        using (refused)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Equal("urn:actorha:problem:overloaded", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync(key)).Status);
        using var after = await node.Http.PutAsync(ActorHaClient.KeyPath(key), new ByteArrayContent("small"u8.ToArray()));
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
    }

    [Fact]
    public async Task A_key_listing_beyond_what_a_node_runs_at_once_gets_503_overloaded_and_gets_its_page_once_one_is_free()
    {
        // arrange: the node is running its one listing already. (Made here through the node's own admission: 30 real
        // listings at once depended on two of them overlapping, and in one CI run all 30 were answered 200.)
        var admission = node.Services.GetRequiredService<ActorHa.Api.Admission>();
        Assert.True(admission.TryEnterList());
        string?[] refused;
        try
        {
            // act: listings meanwhile
            refused = await Task.WhenAll(Enumerable.Range(0, 5).Select(async _ =>
            {
                using var response = await node.Http.GetAsync("v1/kv?limit=10");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
                return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString();
            }));
        }
        finally
        {
            admission.ExitList();
        }

        // assert: every one refused as overloaded; with the listing done, the next gets its page (a refusal kept no slot)
        Assert.All(refused, type => Assert.Equal("urn:actorha:problem:overloaded", type));
        using var later = await node.Http.GetAsync("v1/kv?limit=10");
        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
        using var again = await node.Http.GetAsync("v1/kv?limit=10");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }
}
