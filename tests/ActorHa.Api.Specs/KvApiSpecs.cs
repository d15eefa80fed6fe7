using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ActorHa.Client;

namespace ActorHa.Api.Specs;

[Collection(SqliteNodeCollection.Name)]
public sealed class SqliteKvApiSpecs(SqliteNodeFixture node) : KvApiSpecs(node);

[Collection(PostgresNodeCollection.Name)]
public sealed class PostgresKvApiSpecs(PostgresNodeFixture node) : KvApiSpecs(node);

/// <summary>Run against one node on each store.</summary>
public abstract class KvApiSpecs(NodeFixture node)
{
    private static string NewKey(string prefix = "k") => $"{prefix}-{Guid.NewGuid():N}";

    private static byte[] V(string s) => Encoding.UTF8.GetBytes(s);

    private async Task<(HttpResponseMessage Response, JsonElement Problem)> ProblemOf(HttpRequestMessage request)
    {
        var response = await node.Http.SendAsync(request);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal((int)response.StatusCode, problem.GetProperty("status").GetInt32());
        Assert.False(problem.TryGetProperty("exception", out _));
        return (response, problem);
    }

    [Fact]
    public async Task A_first_put_answers_201_with_the_version_as_ETag_and_a_second_put_200()
    {
        var key = NewKey();

        using var created = await node.Http.PutAsync(ActorHaClient.KeyPath(key), new ByteArrayContent(V("one")));
        using var updated = await node.Http.PutAsync(ActorHaClient.KeyPath(key), new ByteArrayContent(V("two")));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("\"1\"", created.Headers.ETag?.Tag);
        Assert.Equal($"/v1/kv/{key}", created.Headers.Location?.OriginalString);
        Assert.Equal(1, (await created.Content.ReadFromJsonAsync<KeyVersion>())!.Version);
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal("\"2\"", updated.Headers.ETag?.Tag);
        Assert.Equal(new KeyVersion(key, 2), await updated.Content.ReadFromJsonAsync<KeyVersion>());
    }

    [Fact]
    public async Task A_get_returns_the_exact_bytes_and_the_version()
    {
        var key = NewKey();
        var value = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        await node.Client.PutAsync(key, value);

        using var response = await node.Http.GetAsync(ActorHaClient.KeyPath(key));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/octet-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("\"1\"", response.Headers.ETag?.Tag);
        Assert.Equal(value, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Keys_with_slashes_spaces_and_unicode_round_trip()
    {
        var key = $"tenant/α β/{Guid.NewGuid():N}/日本";

        var put = await node.Client.PutAsync(key, V("x"));
        var get = await node.Client.GetAsync(key);

        Assert.Equal(HttpStatusCode.Created, put.Status);
        Assert.Equal(key, put.Value!.Key);
        Assert.Equal(V("x"), get.Value!.Value);
    }

    [Fact]
    public async Task A_missing_key_is_404_problem_json()
    {
        var (response, problem) = await ProblemOf(new HttpRequestMessage(HttpMethod.Get, ActorHaClient.KeyPath(NewKey())));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("urn:actorha:problem:not-found", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task If_Match_with_a_stale_version_is_412_with_the_current_version()
    {
        var key = NewKey();
        await node.Client.PutAsync(key, V("1"));
        await node.Client.PutAsync(key, V("2"));
        var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(key)) { Content = new ByteArrayContent(V("3")) };
        request.Headers.TryAddWithoutValidation("If-Match", "\"1\"");

        var (response, problem) = await ProblemOf(request);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        Assert.Equal("urn:actorha:problem:version-mismatch", problem.GetProperty("type").GetString());
        Assert.Equal(2, problem.GetProperty("currentVersion").GetInt64());
        Assert.Equal(1, problem.GetProperty("expectedVersion").GetInt64());
        Assert.Equal(V("2"), (await node.Client.GetAsync(key)).Value!.Value);
    }

    [Fact]
    public async Task If_Match_with_the_current_version_writes_the_next_version()
    {
        var key = NewKey();
        await node.Client.PutAsync(key, V("1"));

        var cas = await node.Client.PutAsync(key, V("2"), expectedVersion: 1);

        Assert.Equal(HttpStatusCode.OK, cas.Status);
        Assert.Equal(2, cas.Version);
    }

    [Fact]
    public async Task If_None_Match_star_creates_only_once()
    {
        var key = NewKey();

        var first = await node.Client.PutAsync(key, V("a"), expectedVersion: 0);
        var second = await node.Client.PutAsync(key, V("b"), expectedVersion: 0);

        Assert.Equal(HttpStatusCode.Created, first.Status);
        Assert.Equal(HttpStatusCode.PreconditionFailed, second.Status);
        Assert.Equal(1, second.Problem!.CurrentVersion());
    }

    [Fact]
    public async Task A_delete_answers_the_tombstone_version_and_the_key_is_then_gone()
    {
        var key = NewKey();
        await node.Client.PutAsync(key, V("a"));

        var deleted = await node.Client.DeleteAsync(key);
        var get = await node.Client.GetAsync(key);
        var again = await node.Client.DeleteAsync(key);
        var recreated = await node.Client.PutAsync(key, V("b"));

        Assert.Equal((HttpStatusCode.OK, 2L), (deleted.Status, deleted.Value!.Version));
        Assert.Equal(HttpStatusCode.NotFound, get.Status);
        Assert.Equal(HttpStatusCode.NotFound, again.Status);
        Assert.Equal((HttpStatusCode.Created, 3L), (recreated.Status, recreated.Value!.Version));
    }

    [Fact]
    public async Task A_delete_with_a_stale_If_Match_is_412_and_deletes_nothing()
    {
        var key = NewKey();
        await node.Client.PutAsync(key, V("a"));
        await node.Client.PutAsync(key, V("b"));

        var stale = await node.Client.DeleteAsync(key, expectedVersion: 1);

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);
        Assert.Equal(2, stale.Problem!.CurrentVersion());
        Assert.Equal(HttpStatusCode.OK, (await node.Client.GetAsync(key)).Status);
    }

    [Theory]
    [InlineData("v1/kv/bad%01key")]
    [InlineData("v1/kv/tab%09key")]
    [InlineData("v1/kv/")]
    public async Task A_bad_key_is_400_problem_json(string path)
    {
        var (response, problem) = await ProblemOf(new HttpRequestMessage(HttpMethod.Put, path) { Content = new ByteArrayContent(V("x")) });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:actorha:problem:invalid-key", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_NUL_in_the_path_is_refused_with_400_by_the_server_itself()
    {
        // Kestrel rejects %00 before any middleware runs, so this 400 carries no problem body.
        using var response = await node.Http.GetAsync("v1/kv/bad%00key");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_request_line_over_8_KB_and_headers_over_32_KB_are_refused_by_the_server_itself_without_a_problem_body()
    {
        // Kestrel answers these before any middleware runs (documented in the README); this pins that behaviour.
        var longLine = await RawHttp.SendAsync(node.Url, "GET", "/v1/kv/" + new string('k', 9000));
        var bigHeaders = await RawHttp.SendAsync(node.Url, "GET", "/v1/kv/k", [.. Enumerable.Range(0, 5).Select(i => $"X-Filler-{i}: {new string('x', 8000)}")]);

        Assert.Equal(414, longLine.Status);
        Assert.Equal(431, bigHeaders.Status);
        Assert.Equal("", longLine.Body + bigHeaders.Body);
    }

    [Fact]
    public async Task A_key_longer_than_512_bytes_is_400()
    {
        var (response, problem) = await ProblemOf(new HttpRequestMessage(HttpMethod.Get, ActorHaClient.KeyPath(new string('k', 513))));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("512", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_value_at_the_limit_is_stored_and_one_byte_more_is_413()
    {
        var key = NewKey();

        var atLimit = await node.Client.PutAsync(key, new byte[NodeFixture.MaxValueBytes]);
        var (response, problem) = await ProblemOf(new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(key)) { Content = new ByteArrayContent(new byte[NodeFixture.MaxValueBytes + 1]) });

        Assert.Equal(HttpStatusCode.Created, atLimit.Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(NodeFixture.MaxValueBytes, problem.GetProperty("maxBytes").GetInt32());
        Assert.Equal(1, (await node.Client.GetAsync(key)).Version);
    }

    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 0)]
    [InlineData(true, 40_000)]
    [InlineData(false, 40_000)]
    public async Task A_body_with_or_without_a_content_length_is_stored_byte_for_byte(bool chunked, int size)
    {
        // arrange: a value spanning several reads (or none at all), every byte different from its neighbours
        var key = NewKey();
        var value = Enumerable.Range(0, size).Select(i => (byte)(i * 31 + (i >> 8))).ToArray();
        var content = new StreamContent(new MemoryStream(value));
        content.Headers.ContentLength = chunked ? null : size;
        var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(key)) { Content = content };
        request.Headers.TransferEncodingChunked = chunked;

        // act
        using var response = await node.Http.SendAsync(request);
        var read = await node.Client.GetAsync(key);

        // assert
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(value, read.Value!.Value);
    }

    [Fact]
    public async Task A_chunked_body_over_the_limit_is_413_too()
    {
        var content = new StreamContent(new MemoryStream(new byte[NodeFixture.MaxValueBytes + 10]));
        content.Headers.ContentLength = null;
        var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(NewKey())) { Content = content };
        request.Headers.TransferEncodingChunked = true;

        var (response, _) = await ProblemOf(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Theory]
    [InlineData("If-Match", "abc")]
    [InlineData("If-Match", "\"0\"")]
    [InlineData("If-None-Match", "\"3\"")]
    public async Task A_malformed_precondition_is_400(string header, string value)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(NewKey())) { Content = new ByteArrayContent(V("x")) };
        request.Headers.TryAddWithoutValidation(header, value);

        var (response, problem) = await ProblemOf(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("urn:actorha:problem:invalid-request", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Listing_pages_through_keys_of_every_partition_in_order()
    {
        // arrange: 30 keys under one prefix land in many partitions
        var prefix = $"list-{Guid.NewGuid():N}/";
        var keys = Enumerable.Range(0, 30).Select(i => $"{prefix}{i:D2}").ToList();
        foreach (var key in keys)
        {
            await node.Client.PutAsync(key, V(key));
        }

        await node.Client.DeleteAsync(keys[5]);

        // act
        var seen = new List<KeyVersion>();
        string? after = null;
        do
        {
            var page = await node.Client.ListAsync(prefix, limit: 7, after: after);
            Assert.Equal(HttpStatusCode.OK, page.Status);
            seen.AddRange(page.Value!.Keys);
            after = page.Value.Next;
        }
        while (after is not null);

        // assert
        Assert.Equal(keys.Where((_, i) => i != 5), seen.Select(k => k.Key));
        Assert.All(seen, k => Assert.Equal(1, k.Version));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    [InlineData("ten")]
    public async Task A_bad_list_limit_is_400(string limit)
    {
        var (response, _) = await ProblemOf(new HttpRequestMessage(HttpMethod.Get, $"v1/kv?limit={limit}"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_write_repeated_with_the_same_Idempotency_Key_is_applied_once()
    {
        var key = NewKey();
        async Task<HttpResponseMessage> Put(string idempotencyKey, string value)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(key)) { Content = new ByteArrayContent(V(value)) };
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
            return await node.Http.SendAsync(request);
        }

        using var first = await Put("order-17", "a");
        using var retry = await Put("order-17", "a");
        using var other = await Put("order-18", "b");

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal("\"1\"", retry.Headers.ETag?.Tag);
        Assert.Equal("\"2\"", other.Headers.ETag?.Tag);
        Assert.Equal(V("b"), (await node.Client.GetAsync(key)).Value!.Value);
    }

    [Fact]
    public async Task An_Idempotency_Key_reused_for_a_different_value_key_or_operation_is_422_problem_json_and_applies_nothing()
    {
        // arrange: the other key in the same partition, where the id is remembered (ids are remembered per partition)
        var map = new ActorHa.Domain.PartitionMap(ActorHa.Domain.PartitionMap.DefaultPartitionCount);
        var key = NewKey();
        var otherKey = Enumerable.Range(0, 10_000).Select(_ => NewKey()).First(k => map.For(k) == map.For(key));
        HttpRequestMessage Request(HttpMethod method, string target, string? value)
        {
            var request = new HttpRequestMessage(method, ActorHaClient.KeyPath(target)) { Content = value is null ? null : new ByteArrayContent(V(value)) };
            request.Headers.TryAddWithoutValidation("Idempotency-Key", $"invoice-{key}");
            return request;
        }

        using var first = await node.Http.SendAsync(Request(HttpMethod.Put, key, "a"));

        // act
        var (otherValue, otherValueProblem) = await ProblemOf(Request(HttpMethod.Put, key, "b"));
        var (otherTarget, otherTargetProblem) = await ProblemOf(Request(HttpMethod.Put, otherKey, "a"));
        var (delete, deleteProblem) = await ProblemOf(Request(HttpMethod.Delete, key, null));
        using var retry = await node.Http.SendAsync(Request(HttpMethod.Put, key, "a"));

        // assert: each reuse refused with 422, the true retry still answered with the first outcome
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.All([otherValue, otherTarget, delete], r => Assert.Equal(HttpStatusCode.UnprocessableEntity, r.StatusCode));
        Assert.All([otherValueProblem, otherTargetProblem, deleteProblem], p => Assert.Equal("urn:actorha:problem:idempotency-key-reused", p.GetProperty("type").GetString()));
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal("\"1\"", retry.Headers.ETag?.Tag);
        var stored = await node.Client.GetAsync(key);
        Assert.Equal(V("a"), stored.Value!.Value);
        Assert.Equal(1L, stored.Value.Version);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync(otherKey)).Status);
    }

    [Fact]
    public async Task An_unknown_route_is_404_problem_json()
    {
        var (response, _) = await ProblemOf(new HttpRequestMessage(HttpMethod.Get, "v2/nothing"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private static void AssertProblem(RawResponse response, int status, string type)
    {
        Assert.Equal(status, response.Status);
        Assert.Equal("application/problem+json", response.ContentType?.Split(';')[0]);
        Assert.Contains($"\"urn:actorha:problem:{type}\"", response.Body);
    }

    [Theory]
    [InlineData("DELETE", "/v1/kv/zz/../{0}")]
    [InlineData("PUT", "/v1/kv/zz/%2e%2e/{0}")]
    [InlineData("PUT", "/v1/kv/{0}/.")]
    [InlineData("PUT", "/v1/kv/{0}/%2E")]
    [InlineData("GET", "/v1/kv/{0}/./")]
    [InlineData("PUT", "/v1/x/../kv/{0}")]
    public async Task A_dot_or_dot_dot_segment_in_the_key_is_400_invalid_key_and_touches_no_other_key(string method, string target)
    {
        // arrange: the key the server would hit after removing the dot segments
        var key = NewKey("dots");
        await node.Client.PutAsync(key, V("kept"));

        // act
        var response = await RawHttp.SendAsync(node.Url, method, string.Format(System.Globalization.CultureInfo.InvariantCulture, target, key), body: method == "PUT" ? "changed" : null);

        // assert
        AssertProblem(response, 400, "invalid-key");
        var read = await node.Client.GetAsync(key);
        Assert.Equal(1L, read.Version);
        Assert.Equal(V("kept"), read.Value!.Value);
        Assert.Empty((await node.Client.ListAsync(key + "/")).Value!.Keys);
    }

    [Fact]
    public async Task The_client_refuses_a_key_with_a_dot_segment_without_sending_it()
    {
        var key = NewKey("dots");
        await node.Client.PutAsync(key, V("kept"));

        var put = await node.Client.PutAsync($"zz/../{key}", V("changed"));
        var delete = await node.Client.DeleteAsync($"zz/../{key}");

        Assert.All([put, delete], o => Assert.Equal((HttpStatusCode.BadRequest, "urn:actorha:problem:invalid-key"), (o.Status, o.Problem!.Type)));
        Assert.Throws<ArgumentException>(() => ActorHaClient.KeyPath($"zz/../{key}"));
        Assert.Equal(V("kept"), (await node.Client.GetAsync(key)).Value!.Value);
    }

    [Fact]
    public async Task A_percent_encoded_slash_is_a_slash_and_a_doubly_encoded_one_is_a_literal_percent_2F()
    {
        // arrange
        var prefix = NewKey("enc");

        // act: %2F is decoded once, like every other escape
        using var put = await node.Http.PutAsync($"v1/kv/{prefix}%2Fb", new ByteArrayContent(V("slash")));
        var asSlash = await node.Client.GetAsync($"{prefix}/b");
        using var doubly = await node.Http.GetAsync($"v1/kv/{prefix}%252Fb");

        // assert
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal($"{prefix}/b", (await put.Content.ReadFromJsonAsync<KeyVersion>())!.Key);
        Assert.Equal(V("slash"), asSlash.Value!.Value);
        Assert.Equal(HttpStatusCode.NotFound, doubly.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync($"{prefix}%2Fb")).Status);
    }

    [Theory]
    [InlineData("user/{0}/42")]
    [InlineData("{0}/100%/a%2Fb")]
    [InlineData("{0}?q=1#frag")]
    [InlineData("{0}/with space/+plus")]
    [InlineData("{0}/clé 日本 😀")]
    [InlineData("{0}//trailing/")]
    public async Task The_Location_of_a_created_key_and_the_client_s_key_path_both_lead_to_that_key(string pattern)
    {
        // arrange
        var key = string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, Guid.NewGuid().ToString("N"));

        // act
        using var created = await node.Http.PutAsync(ActorHaClient.KeyPath(key), new ByteArrayContent(V("v")));
        var location = created.Headers.Location!;
        using var followed = await node.Http.GetAsync(location);
        var listed = await node.Client.ListAsync(key, limit: 1);

        // assert
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(key, (await created.Content.ReadFromJsonAsync<KeyVersion>())!.Key);
        Assert.Equal("/" + ActorHaClient.KeyPath(key), location.OriginalString);
        Assert.Equal(HttpStatusCode.OK, followed.StatusCode);
        Assert.Equal(V("v"), await followed.Content.ReadAsByteArrayAsync());
        Assert.Equal(key, listed.Value!.Keys.Single().Key);
    }

    [Theory]
    [InlineData("%FF")]
    [InlineData("%C3%28")]
    [InlineData("a%zz")]
    [InlineData("a%2")]
    public async Task A_key_whose_escapes_are_not_UTF_8_is_400_invalid_key(string escaped)
    {
        var key = NewKey("utf8");

        var put = await RawHttp.SendAsync(node.Url, "PUT", $"/v1/kv/{key}{escaped}", body: "x");
        var get = await RawHttp.SendAsync(node.Url, "GET", $"/v1/kv/{key}{escaped}");

        AssertProblem(put, 400, "invalid-key");
        AssertProblem(get, 400, "invalid-key");
        Assert.Empty((await node.Client.ListAsync(key)).Value!.Keys);
    }

    [Theory]
    [InlineData("PUT", "If-Match:")]
    [InlineData("PUT", "If-None-Match:")]
    [InlineData("PUT", "If-Match:   ")]
    [InlineData("DELETE", "If-Match:")]
    public async Task An_empty_precondition_header_is_400_and_changes_nothing(string method, string header)
    {
        // arrange
        var key = NewKey("cas");
        await node.Client.PutAsync(key, V("kept"));

        // act
        var response = await RawHttp.SendAsync(node.Url, method, "/" + ActorHaClient.KeyPath(key), [header], body: method == "PUT" ? "changed" : null);

        // assert
        AssertProblem(response, 400, "invalid-request");
        var read = await node.Client.GetAsync(key);
        Assert.Equal(1L, read.Version);
        Assert.Equal(V("kept"), read.Value!.Value);
    }

    [Fact]
    public async Task Different_spellings_of_one_GUID_are_different_Idempotency_Keys()
    {
        // arrange
        var key = NewKey("idem");
        var guid = Guid.NewGuid();
        async Task<HttpResponseMessage> Put(string idempotencyKey, string value)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, ActorHaClient.KeyPath(key)) { Content = new ByteArrayContent(V(value)) };
            request.Headers.TryAddWithoutValidation("Idempotency-Key", idempotencyKey);
            return await node.Http.SendAsync(request);
        }

        // act
        using var canonical = await Put(guid.ToString("D"), "a");
        using var braced = await Put(guid.ToString("B").ToUpperInvariant(), "b");
        using var upper = await Put(guid.ToString("D").ToUpperInvariant(), "c");
        using var dashless = await Put(guid.ToString("N"), "d");
        using var retry = await Put(guid.ToString("D"), "a");

        // assert: four writes, and the canonical retry still answered with its first outcome
        Assert.Equal(["\"1\"", "\"2\"", "\"3\"", "\"4\"", "\"1\""], new[] { canonical, braced, upper, dashless, retry }.Select(r => r.Headers.ETag?.Tag));
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.Equal(V("d"), (await node.Client.GetAsync(key)).Value!.Value);
    }

    [Theory]
    [InlineData("Idempotency-Key:")]
    [InlineData("Idempotency-Key:    ")]
    [InlineData("Idempotency-Key: tab\there")]
    [InlineData("Idempotency-Key: caf\u00e9")]
    [InlineData("Idempotency-Key: \u65e5\u672c")]
    public async Task An_empty_or_not_printable_ASCII_Idempotency_Key_is_400_and_writes_nothing(string header)
    {
        var key = NewKey("idem");

        var response = await RawHttp.SendAsync(node.Url, "PUT", "/" + ActorHaClient.KeyPath(key), [header], body: "x");

        AssertProblem(response, 400, "invalid-request");
        Assert.Equal(HttpStatusCode.NotFound, (await node.Client.GetAsync(key)).Status);
    }

    [Fact]
    public async Task HEAD_answers_a_key_with_the_status_and_headers_of_GET_and_no_body()
    {
        var key = NewKey("head");
        await node.Client.PutAsync(key, V("hello"));

        var head = await RawHttp.SendAsync(node.Url, "HEAD", "/" + ActorHaClient.KeyPath(key));
        var missing = await RawHttp.SendAsync(node.Url, "HEAD", "/" + ActorHaClient.KeyPath(key + "-missing"));

        Assert.Equal(200, head.Status);
        Assert.Equal("\"1\"", head.Headers["etag"]);
        Assert.Equal("5", head.Headers["content-length"]);
        Assert.Equal("application/octet-stream", head.ContentType);
        Assert.Equal("", head.Body);
        Assert.Equal(404, missing.Status);
        Assert.Equal("", missing.Body);
    }

    [Theory]
    [InlineData("v1/kv")]
    [InlineData("v1/kv?prefix=x")]
    [InlineData("v1/cluster")]
    [InlineData("healthz/live")]
    [InlineData("healthz/ready")]
    public async Task HEAD_is_served_wherever_GET_is(string path)
    {
        using var head = await node.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("GET", "/v1/nope", "text/plain", null, 404, "no-such-route")]
    [InlineData("PATCH", "/v1/kv/x", "text/plain", null, 405, "method-not-allowed")]
    [InlineData("PUT", "/v1/kv/chunked", "text/html", "zz\r\nnot a chunk\r\n", 400, "invalid-request")]
    public async Task Errors_are_problem_json_whatever_the_Accept_header_asks_for(string method, string target, string accept, string? chunkedBody, int status, string type)
    {
        var headers = chunkedBody is null ? new[] { $"Accept: {accept}" } : [$"Accept: {accept}", "Transfer-Encoding: chunked"];

        var response = await RawHttp.SendAsync(node.Url, method, target, headers, rawBody: chunkedBody);

        AssertProblem(response, status, type);
    }

    [Fact]
    public async Task A_listing_names_a_next_page_only_when_more_keys_follow()
    {
        // arrange
        var prefix = $"page-{Guid.NewGuid():N}/";
        await node.Client.PutAsync(prefix + "1", V("1"));
        await node.Client.PutAsync(prefix + "2", V("2"));

        // act
        var exactlyFull = await node.Client.ListAsync(prefix, limit: 2);
        await node.Client.PutAsync(prefix + "3", V("3"));
        var first = await node.Client.ListAsync(prefix, limit: 2);
        var second = await node.Client.ListAsync(prefix, limit: 2, after: first.Value!.Next);

        // assert
        Assert.Equal(2, exactlyFull.Value!.Keys.Count);
        Assert.Null(exactlyFull.Value.Next);
        Assert.Equal(prefix + "2", first.Value.Next);
        Assert.Equal([prefix + "3"], second.Value!.Keys.Select(k => k.Key));
        Assert.Null(second.Value.Next);
    }
}
