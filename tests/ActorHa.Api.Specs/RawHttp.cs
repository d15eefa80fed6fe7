using System.Net.Sockets;
using System.Text;

namespace ActorHa.Api.Specs;

/// <summary>The status, headers and body text of one response to bytes sent as they are.</summary>
public sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public string? ContentType => Headers.TryGetValue("content-type", out var v) ? v : null;
}

/// <summary>
/// One HTTP/1.1 request written to a socket byte for byte. HttpClient (through Uri) removes "." and ".."
/// segments and refuses empty or non-ASCII header values, so what a probe like curl --path-as-is sends can
/// only be sent this way.
/// </summary>
public static class RawHttp
{
    public static async Task<RawResponse> SendAsync(string baseUrl, string method, string target, IEnumerable<string>? headers = null, string? body = null, string? rawBody = null)
    {
        var uri = new Uri(baseUrl);
        var request = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: {uri.Authority}\r\nConnection: close\r\n");
        foreach (var header in headers ?? [])
        {
            request.Append(header).Append("\r\n");
        }

        if (body is not null)
        {
            request.Append($"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n");
        }

        request.Append("\r\n").Append(body ?? rawBody);

        using var client = new TcpClient();
        await client.ConnectAsync(uri.Host, uri.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));

        var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var lines = text[..headEnd].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var parsed = new Dictionary<string, string>();
        foreach (var line in lines.Skip(1))
        {
            var parts = line.Split(':', 2);
            parsed[parts[0].Trim().ToLowerInvariant()] = parts[1].Trim();
        }

        return new RawResponse(status, parsed, text[(headEnd + 4)..]);
    }

    /// <summary>A connection kept open for an exchange in steps, such as a request head, its 100 Continue, then its body.</summary>
    public static async Task<Socket> ConnectAsync(string baseUrl)
    {
        var uri = new Uri(baseUrl);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(uri.Host, uri.Port);
        return socket;
    }

    /// <summary>Reads up to the end of one response head (a 100 Continue has no body; a final answer's body is left unread).</summary>
    public static async Task<string> ReadHeadAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var head = new List<byte>();
        var one = new byte[1];
        while (!(head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await socket.ReceiveAsync(one, timeout.Token) == 0)
            {
                break;
            }

            head.Add(one[0]);
        }

        return Encoding.ASCII.GetString(head.ToArray());
    }
}
