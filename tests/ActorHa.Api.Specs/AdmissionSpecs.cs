using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ActorHa.Client;

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
    public async Task A_put_beyond_the_bytes_a_node_takes_in_at_once_gets_503_overloaded_before_its_body_is_read_and_changes_nothing()
    {
        // arrange: a PUT of a full-size value whose body is still on its way
        var bodyHalfSent = new TaskCompletionSource();
        var finishBody = new TaskCompletionSource();
        var slowKey = $"slow-{Guid.NewGuid():N}";
        var slow = node.Http.PutAsync(ActorHaClient.KeyPath(slowKey), new SlowContent(NodeFixture.MaxValueBytes, bodyHalfSent, finishBody.Task));
        await bodyHalfSent.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await UntilTheNodeHoldsAFullValueAsync();

        // act: a small PUT meanwhile
        var refusedKey = $"refused-{Guid.NewGuid():N}";
        using var refused = await node.Http.PutAsync(ActorHaClient.KeyPath(refusedKey), new ByteArrayContent("small"u8.ToArray()));
        finishBody.SetResult();
        using var slowDone = await slow;

        // assert: 503 with Retry-After and the overloaded problem; the slow write went through; the refused one was never
        // written; and the bytes are free again
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal("urn:actorha:problem:overloaded", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.Created, slowDone.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync(refusedKey)).Status);
        using var after = await node.Http.PutAsync(ActorHaClient.KeyPath(refusedKey), new ByteArrayContent("small"u8.ToArray()));
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
    }

    /// <summary>
    /// The client has sent half a body when its request reaches the handler that reserves its bytes; on a busy machine
    /// that can be later (a CI run sent the small PUT first, and it was written). A PUT declaring more than a value may
    /// be is refused after admission without being written: 413 until the node holds a full value's bytes, then 503.
    /// </summary>
    private async Task UntilTheNodeHoldsAFullValueAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var probe = await node.Http.PutAsync(ActorHaClient.KeyPath("admission-probe"), new ByteArrayContent(new byte[NodeFixture.MaxValueBytes + 1]));
            if (probe.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                return;
            }

            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, probe.StatusCode);
            Assert.True(DateTime.UtcNow < deadline, "the node never reserved the slow write's bytes");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Key_listings_beyond_what_a_node_runs_at_once_get_503_overloaded_and_the_others_their_page()
    {
        // act: 30 listings at once on a node that runs one at a time
        var answers = await Task.WhenAll(Enumerable.Range(0, 30).Select(async _ =>
        {
            using var response = await node.Http.GetAsync("v1/kv?limit=10");
            return response.StatusCode == HttpStatusCode.ServiceUnavailable
                ? (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString()
                : ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }));

        // assert
        Assert.All(answers, a => Assert.True(a is "200" or "urn:actorha:problem:overloaded", a));
        Assert.Contains("200", answers);
        Assert.Contains("urn:actorha:problem:overloaded", answers);
        using var later = await node.Http.GetAsync("v1/kv?limit=10");
        Assert.Equal(HttpStatusCode.OK, later.StatusCode);
    }

    /// <summary>A body of <paramref name="length"/> bytes: half of it, then the rest once <paramref name="finish"/> completes.</summary>
    private sealed class SlowContent(int length, TaskCompletionSource halfSent, Task finish) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = new byte[length / 2];
            await stream.WriteAsync(half);
            await stream.FlushAsync();
            halfSent.TrySetResult();
            await finish;
            await stream.WriteAsync(new byte[length - half.Length]);
        }

        protected override bool TryComputeLength(out long size)
        {
            size = length;
            return true;
        }
    }
}
