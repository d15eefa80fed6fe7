using System.Net;
using System.Net.Sockets;
using System.Text;
using ActorHa.Client;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// <see cref="ClusterClient"/> against a node that accepts connections and never answers (a frozen process): what
/// it reports, and that it says how long it really waited.
/// </summary>
public sealed class SilentNodeSpecs
{
    [Fact]
    public async Task A_read_that_gets_no_answer_says_nothing_was_changed_and_a_write_that_its_outcome_is_unknown()
    {
        // arrange: a listener that takes every connection and stays silent
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = new List<TcpClient>();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                accepted.Add(await silent.AcceptTcpClientAsync());
            }
        });
        using var client = new ClusterClient([$"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}"], timeout: TimeSpan.FromMilliseconds(500));

        // act
        var read = await Assert.ThrowsAsync<OutcomeUnknownException>(() => client.GetAsync("k", retryFor: TimeSpan.Zero));
        var write = await Assert.ThrowsAsync<OutcomeUnknownException>(() => client.PutAsync("k", Encoding.UTF8.GetBytes("v"), retryFor: TimeSpan.Zero));

        // assert
        Assert.Contains("nothing was changed", read.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("write", read.Message, StringComparison.Ordinal);
        Assert.Contains("the write may or may not have been applied", write.Message, StringComparison.Ordinal);
        Assert.Matches(@"in \d+(\.\d)? s;", write.Message);
        accepted.ForEach(c => c.Dispose());
    }
}
