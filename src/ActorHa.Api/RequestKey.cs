using ActorHa.Domain;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ActorHa.Api;

/// <summary>
/// The key a /v1/kv request names, read from the request target as the client sent it: the path after /v1/kv/,
/// percent-decoded exactly once as UTF-8 (<see cref="Keys.TryUnescape"/>). Not from Request.Path: Kestrel has
/// already removed "." and ".." segments from it (so /v1/kv/zz/../greeting would name greeting) and decoded
/// every escape except %2F (so a/b, a%2Fb and a%252Fb would not be one rule).
/// </summary>
public static class RequestKey
{
    private const string Prefix = "/v1/kv";

    /// <summary>The key ("" for /v1/kv and /v1/kv/), or a reason the target names no key at all.</summary>
    public static bool TryRead(HttpRequest request, out string key, out string? problem)
    {
        key = "";
        var target = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        var path = string.IsNullOrEmpty(target)
            ? (request.PathBase + request.Path).ToUriComponent()
            : PathOf(target);
        if (!Keys.TryUnescape(path, out var decoded, out problem))
        {
            return false;
        }

        if (decoded.Length == Prefix.Length && decoded.Equals(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        // Routing matched /v1/kv/… on the normalised path; a decoded target that does not start with it got
        // there through "." or ".." segments (/v1/x/../kv/k), which address nothing.
        if (decoded.Length <= Prefix.Length || decoded[Prefix.Length] != '/' || !decoded.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            problem = "The request path has '.' or '..' segments; send /v1/kv/ followed by the key.";
            return false;
        }

        key = decoded[(Prefix.Length + 1)..];
        return true;
    }

    /// <summary>The path of an origin-form (/p?q) or absolute-form (http://host/p?q) request target.</summary>
    private static ReadOnlySpan<char> PathOf(string target)
    {
        var span = target.AsSpan();
        if (span.Length > 0 && span[0] != '/' && span.IndexOf("://", StringComparison.Ordinal) is var scheme and >= 0)
        {
            var afterAuthority = span[(scheme + 3)..];
            var slash = afterAuthority.IndexOfAny('/', '?');
            span = slash < 0 ? "/" : afterAuthority[slash..];
        }

        var query = span.IndexOfAny('?', '#');
        return query < 0 ? span : span[..query];
    }
}
