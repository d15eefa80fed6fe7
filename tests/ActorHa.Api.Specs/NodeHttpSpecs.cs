using System.Net.Sockets;
using ActorHa.Client;
using ActorHa.Launcher;

namespace ActorHa.Api.Specs;

/// <summary>Every transport failure of the shared node HttpClient arrives as HttpRequestException, which callers catch.</summary>
public sealed class NodeHttpSpecs
{
    [Fact]
    public async Task A_bare_socket_error_from_the_handler_arrives_as_a_request_error_of_unknown_outcome_that_keeps_its_cause()
    {
        // arrange: a handler that fails as SocketsHttpHandler does when a connection is reset right after connect
        using var http = new HttpClient(new NodeHttp.SocketErrorsAsRequestErrors(new ThrowingHandler(new SocketException((int)SocketError.NotConnected))));

        // act
        var thrown = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("http://127.0.0.1:9/v1/kv/k"));

        // assert: callers that treat HttpRequestException as "unreachable, outcome unknown" handle it; the cause is kept
        Assert.Equal(HttpRequestError.Unknown, thrown.HttpRequestError);
        var cause = Assert.IsType<SocketException>(thrown.InnerException);
        Assert.Equal(SocketError.NotConnected, cause.SocketErrorCode);
        Assert.Contains("127.0.0.1:9", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_connection_is_still_a_connection_error_so_callers_know_nothing_was_sent()
    {
        // arrange: a loopback port nothing listens on
        var port = Ports.FindFreeRange(1);
        using var http = NodeHttp.Create(TimeSpan.FromSeconds(5), $"http://127.0.0.1:{port}");

        // act
        var thrown = await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("v1/kv/k"));

        // assert
        Assert.Equal(HttpRequestError.ConnectionError, thrown.HttpRequestError);
    }

    private sealed class ThrowingHandler(Exception e) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => throw e;
    }
}
