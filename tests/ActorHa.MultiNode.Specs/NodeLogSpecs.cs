using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>What a node writes to its log when clients misbehave: operators alert on error lines, so those are for the node's own faults.</summary>
public sealed class NodeLogSpecs(ITestOutputHelper output)
{
    [Fact]
    public async Task A_body_a_client_botches_or_abandons_is_answered_without_an_error_line_or_a_stack_trace_in_the_node_log()
    {
        await using var spec = new SpecCluster(output, nodes: 1);
        var node = spec.Cluster[1];
        try
        {
            await spec.Step("one node starts", () => spec.StartAll());
            var uri = new Uri(node.HttpUrl);

            await spec.Step("a PUT whose chunked body is malformed is answered 400 problem+json", async () =>
            {
                var response = await SendRawAsync(uri, "PUT /v1/kv/botched HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnot a chunk\r\n", readAnswer: true);
                Assert.StartsWith("HTTP/1.1 400", response);
                Assert.Contains("application/problem+json", response);
            });

            await spec.Step("a client that hangs up halfway through a declared 100,000-byte body gets nothing, and the node serves the next request", async () =>
            {
                await SendRawAsync(uri, "PUT /v1/kv/abandoned HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + new string('a', 1000), readAnswer: false);
                await Task.Delay(1000);
                var put = await node.Client.PutAsync("after", Encoding.UTF8.GetBytes("fine"));
                Assert.True(put.IsSuccess, $"{(int)put.Status} {put.Problem?.Detail}");
                Assert.True((await node.Client.GetAsync("abandoned")).Status == System.Net.HttpStatusCode.NotFound);
            });

            await spec.Step("the node's log has no error line and no stack trace for either", () =>
            {
                var log = File.ReadAllLines(node.LogFile);
                var errors = log.Where(l => l.Contains(" fail: ", StringComparison.Ordinal) || l.Contains(" crit: ", StringComparison.Ordinal) || l.Contains("   at ", StringComparison.Ordinal)).ToList();
                Assert.True(errors.Count == 0, string.Join('\n', errors.Take(3)));
                return Task.CompletedTask;
            });
        }
        catch
        {
            spec.DumpLogs();
            throw;
        }
    }

    private static async Task<string> SendRawAsync(Uri uri, string request, bool readAnswer)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        if (!readAnswer)
        {
            return "";
        }

        using var reader = new StreamReader(stream, Encoding.UTF8);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await reader.ReadToEndAsync(cts.Token);
    }
}
