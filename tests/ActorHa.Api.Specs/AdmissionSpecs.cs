using System.Net;
using System.Text;
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
    public async Task A_large_put_turned_away_as_overloaded_is_answered_before_its_value_is_sent_and_an_admitted_one_is_asked_for_its_value()
    {
        // arrange: the node is taking in a full value already; a raw request that asks before sending its value
        var admission = node.Services.GetRequiredService<ActorHa.Api.Admission>();
        var key = $"asked-{Guid.NewGuid():N}";
        var head = Encoding.ASCII.GetBytes(
            $"PUT /{ActorHaClient.KeyPath(key)} HTTP/1.1\r\nHost: {new Uri(node.Url).Authority}\r\nContent-Length: {NodeFixture.MaxValueBytes}\r\nExpect: 100-continue\r\n\r\n");
        Assert.True(admission.TryReserveWrite(NodeFixture.MaxValueBytes));
        string refused;
        try
        {
            // act: only the request head is sent
            using var socket = await RawHttp.ConnectAsync(node.Url);
            await socket.SendAsync(head);
            refused = await RawHttp.ReadHeadAsync(socket);
        }
        finally
        {
            admission.ReleaseWrite(NodeFixture.MaxValueBytes);
        }

        // assert: the refusal came without the value, and nothing was written; with the bytes free, the node asks for
        // the value (100 Continue) and writes it
        Assert.StartsWith("HTTP/1.1 503 ", refused, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync(key)).Status);
        using (var socket = await RawHttp.ConnectAsync(node.Url))
        {
            await socket.SendAsync(head);
            Assert.StartsWith("HTTP/1.1 100 Continue", await RawHttp.ReadHeadAsync(socket), StringComparison.Ordinal);
            await socket.SendAsync(new byte[NodeFixture.MaxValueBytes]);
            Assert.StartsWith("HTTP/1.1 201 ", await RawHttp.ReadHeadAsync(socket), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_client_sends_a_large_value_only_once_the_node_has_admitted_the_write()
    {
        // arrange: a client whose every request body is counted as it goes onto the connection; the node is full
        var sent = new CountingHandler(new SocketsHttpHandler());
        using var http = new HttpClient(sent) { BaseAddress = new Uri(node.Url + "/"), Timeout = TimeSpan.FromSeconds(30) };
        var client = new ActorHaClient(http);
        var key = $"counted-{Guid.NewGuid():N}";
        var value = new byte[ActorHaClient.ExpectContinueFromBytes];
        var admission = node.Services.GetRequiredService<ActorHa.Api.Admission>();
        Assert.True(admission.TryReserveWrite(NodeFixture.MaxValueBytes));
        Outcome<KeyVersion> refused;
        try
        {
            // act
            refused = await client.PutAsync(key, value);
        }
        finally
        {
            admission.ReleaseWrite(NodeFixture.MaxValueBytes);
        }

        // assert: the 503 came back and not one byte of the value was sent; once admitted, the whole value goes
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Equal("urn:actorha:problem:overloaded", refused.Problem?.Type);
        Assert.Equal(0, sent.BodyBytes);
        var admitted = await client.PutAsync(key, value);
        Assert.Equal(HttpStatusCode.Created, admitted.Status);
        Assert.Equal(value.Length, sent.BodyBytes);
    }

    /// <summary>Counts the request body bytes each request actually writes to its connection.</summary>
    private sealed class CountingHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private long _bodyBytes;

        public long BodyBytes => Interlocked.Read(ref _bodyBytes);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Exchange(ref _bodyBytes, 0);
            if (request.Content is { } content)
            {
                request.Content = new CountedContent(content, n => Interlocked.Add(ref _bodyBytes, n));
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    private sealed class CountedContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly Action<long> _count;

        public CountedContent(HttpContent inner, Action<long> count)
        {
            _inner = inner;
            _count = count;
            foreach (var header in inner.Headers)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            var bytes = await _inner.ReadAsByteArrayAsync();
            await stream.WriteAsync(bytes);
            _count(bytes.Length);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _inner.Headers.ContentLength ?? -1;
            return length >= 0;
        }
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
