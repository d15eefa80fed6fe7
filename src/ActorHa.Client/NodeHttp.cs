using System.Net.Sockets;

namespace ActorHa.Client;

/// <summary>
/// The HttpClient every ActorHa tool talks to nodes with: transport failures always arrive as
/// <see cref="HttpRequestException"/>, which is what callers here catch as "the node could not be reached or did not
/// answer".
/// </summary>
/// <remarks>
/// SocketsHttpHandler lets one failure through unwrapped: a connection reset between connect and the pool's read of
/// the socket's remote address throws a bare <see cref="SocketException"/> (107, "Transport endpoint is not
/// connected"). A chaos run met it while a node was being killed, and it ended the run with an unhandled exception.
/// </remarks>
public static class NodeHttp
{
    /// <param name="timeout">One request's timeout.</param>
    /// <param name="baseAddress">The node's URL, if the client talks to one node.</param>
    /// <param name="maxConnectionsPerServer">Connections per node; the default is SocketsHttpHandler's (unlimited).</param>
    public static HttpClient Create(TimeSpan timeout, string? baseAddress = null, int? maxConnectionsPerServer = null)
    {
        var sockets = new SocketsHttpHandler();
        if (maxConnectionsPerServer is { } max)
        {
            sockets.MaxConnectionsPerServer = max;
        }

        var http = new HttpClient(new SocketErrorsAsRequestErrors(sockets)) { Timeout = timeout };
        if (baseAddress is not null)
        {
            http.BaseAddress = new Uri(baseAddress.TrimEnd('/') + "/");
        }

        return http;
    }

    /// <summary>
    /// Rethrows a bare <see cref="SocketException"/> as an <see cref="HttpRequestException"/> with
    /// <see cref="HttpRequestError.Unknown"/>: where SocketsHttpHandler let it through the request had not been sent,
    /// but nothing here can prove that of every path, so callers treat it as "outcome unknown", never as "not applied".
    /// </summary>
    public sealed class SocketErrorsAsRequestErrors(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new HttpRequestException(HttpRequestError.Unknown, $"{e.Message} ({request.RequestUri?.GetLeftPart(UriPartial.Authority)})", e);
            }
        }
    }
}
