using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.Json;
using ActorHa.Client;
using Keys = ActorHa.Domain.Keys;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha put|get|del|ls|status`: thin commands over <see cref="ActorHaClient"/>.</summary>
public static class KvCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IEnumerable<Command> Create()
    {
        var url = new Option<string[]>("--url")
        {
            Description = "A node's HTTP URL; repeat it (or separate with commas) to name several. The others are learned from the cluster, and each key goes to the node that owns it.",
            DefaultValueFactory = _ => ["http://127.0.0.1:8081"],
            Recursive = false,
        };
        var key = new Argument<string>("key") { Description = "The key." };

        // The server's rules, checked before anything is sent: an empty key would otherwise reach the listing.
        key.Validators.Add(result =>
        {
            if (Keys.Validate(result.GetValueOrDefault<string>()) is { } problem)
            {
                result.AddError($"Invalid key: {problem}");
            }
        });

        var value = new Argument<string>("value") { Description = "The value (UTF-8 text); use - to read bytes from stdin." };
        var ifMatch = CliOptions.Version("--if-match", "Write only if the key is at this version (compare-and-set); versions start at 1.");
        var createOnly = new Option<bool>("--create-only") { Description = "Write only if the key does not exist." };
        var retryFor = new Option<string>("--retry-for")
        {
            Description = "Keep trying, on the owner and then on the other nodes, while nodes cannot be reached or answer 503 (a partition moving after a failure), for this long, e.g. 10s; 0 tries each known node once. A write carries the same Idempotency-Key on every attempt, so it is applied at most once.",
            DefaultValueFactory = _ => "10s",
        };
        var idempotencyKey = CliOptions.IdempotencyKey("--idempotency-key", "The write's Idempotency-Key: 1-128 printable ASCII characters (default: a new one per command).");
        var put = new Command("put", "Write a value.") { key, value, url, ifMatch, createOnly, retryFor, idempotencyKey };
        put.Validators.Add(result =>
        {
            if (result.GetValue(createOnly) && result.GetResult(ifMatch) is not null)
            {
                result.AddError("--if-match and --create-only cannot be used together: one expects a version, the other that there is none.");
            }
        });
        put.SetAction((parse, ct) => Run("put", parse, url, retryFor, async (client, window) =>
        {
            var text = parse.GetValue(value)!;
            var bytes = text == "-" ? await ReadStdinAsync(ct) : Encoding.UTF8.GetBytes(text);
            var expected = parse.GetValue(createOnly) ? 0 : parse.GetValue(ifMatch);
            var id = parse.GetValue(idempotencyKey) ?? Guid.NewGuid().ToString();
            return await WriteAsync("put", id, () => client.PutAsync(parse.GetValue(key)!, bytes, expected, id, window, ct),
                outcome => $"{outcome.Value!.Key} version {outcome.Value.Version} ({((int)outcome.Status == 201 ? "created" : "updated")})");
        }));

        var get = new Command("get", "Read a value; prints it to stdout and its version to stderr.") { key, url, retryFor };
        get.SetAction((parse, ct) => Run("get", parse, url, retryFor, async (client, window) =>
        {
            var outcome = await client.GetAsync(parse.GetValue(key)!, window, ct);
            if (!outcome.IsSuccess)
            {
                return Report(outcome, _ => "");
            }

            await using var stdout = Console.OpenStandardOutput();
            await stdout.WriteAsync(outcome.Value!.Value, ct);
            await Console.Error.WriteLineAsync($"(version {outcome.Value.Version})");
            return 0;
        }));

        var del = new Command("del", "Delete a key.") { key, url, ifMatch, retryFor, idempotencyKey };
        del.SetAction((parse, ct) => Run("del", parse, url, retryFor, async (client, window) =>
        {
            var id = parse.GetValue(idempotencyKey) ?? Guid.NewGuid().ToString();
            return await WriteAsync("del", id, () => client.DeleteAsync(parse.GetValue(key)!, parse.GetValue(ifMatch), id, window, ct),
                outcome => $"{outcome.Value!.Key} deleted at version {outcome.Value.Version}");
        }));

        var prefix = new Option<string?>("--prefix") { Description = "Only keys starting with this." };
        var limit = CliOptions.OptionalInt("--limit", "Page size (1-1000, default 100).", 1, 1000);
        var after = new Option<string?>("--after") { Description = "Continue after this key (the previous page's next)." };
        var ls = new Command("ls", "List keys with their versions.") { url, prefix, limit, after, retryFor };
        ls.SetAction((parse, ct) => Run("ls", parse, url, retryFor, async (client, window) =>
        {
            var outcome = await client.ListAsync(parse.GetValue(prefix), parse.GetValue(limit), parse.GetValue(after), window, ct);
            return Report(outcome, list =>
                string.Join(Environment.NewLine, list.Keys.Select(k => $"{k.Key}\t{k.Version}"))
                + (list.Next is null ? "" : $"{Environment.NewLine}(more: --after {ShellQuoted(list.Next)})"));
        }));

        var json = new Option<bool>("--json") { Description = "Print /v1/cluster as JSON instead of a summary." };
        var status = new Command("status", "Show members and which node owns which partitions, from the first node that answers.") { url, json };
        status.SetAction((parse, ct) => Run("status", parse, url, null, async (client, _) =>
        {
            using var doc = await client.ClusterAsync(ct);
            Console.WriteLine(parse.GetValue(json) ? JsonSerializer.Serialize(doc.RootElement, Indented) : StatusReport.Format(doc.RootElement));
            return 0;
        }));

        var ready = new Command("ready", "Exit 0 if the (first) node at --url is ready (member Up, shard region registered), else 1. For health checks.") { url };
        ready.SetAction(async (parse, ct) =>
        {
            var urls = Urls(parse, url);
            if (!await UrlsAreValidAsync("ready", urls))
            {
                return 2;
            }

            return await ActorHaClient.For(urls[0]).IsReadyAsync(ct) ? 0 : 1;
        });

        return [put, get, del, ls, status, ready];
    }

    /// <summary>At least one --url, each an http(s) URL; otherwise one line on stderr.</summary>
    private static async Task<bool> UrlsAreValidAsync(string command, List<string> urls)
    {
        if ((urls.Count == 0 ? "" : urls.FirstOrDefault(u => !IsHttpUrl(u))) is not { } bad)
        {
            return true;
        }

        await Console.Error.WriteLineAsync($"actorha {command}: --url must be an http(s) URL such as http://127.0.0.1:8081, not '{bad}'.");
        return false;
    }

    private static bool IsHttpUrl(string url) => Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";

    private static List<string> Urls(ParseResult parse, Option<string[]> url) =>
        [.. (parse.GetValue(url) ?? []).SelectMany(u => u.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    /// <summary>
    /// Runs a command against the cluster named by --url. Bad --url or --retry-for values are a one-line error
    /// (exit 2); no reachable node is a one-line error (exit 1), not a stack trace.
    /// </summary>
    private static async Task<int> Run(string command, ParseResult parse, Option<string[]> url, Option<string>? retryFor, Func<ClusterClient, TimeSpan, Task<int>> action)
    {
        var text = retryFor is null ? "0" : parse.GetValue(retryFor)!;
        if (!Durations.TryParse(text, out var window) || window < TimeSpan.Zero)
        {
            await Console.Error.WriteLineAsync($"actorha {command}: --retry-for must be a duration such as 10s, 500ms or 0, not '{text}'.");
            return 2;
        }

        var urls = Urls(parse, url);
        if (!await UrlsAreValidAsync(command, urls))
        {
            return 2;
        }

        using var client = new ClusterClient(urls);
        try
        {
            return await action(client, window);
        }
        catch (HttpRequestException e)
        {
            // No node could be connected to, or (OutcomeUnknownException) none answered: one line either way.
            await Console.Error.WriteLineAsync($"actorha {command}: {e.Message}");
            return 1;
        }
        catch (ArgumentException e)
        {
            // A request that could not be built was never sent: a bad argument, not an unknown outcome.
            await Console.Error.WriteLineAsync($"actorha {command}: {e.Message}");
            return 2;
        }
    }

    /// <summary>The text as one word for POSIX shells: single-quoted, each ' written as '\''.</summary>
    public static string ShellQuoted(string text) => "'" + text.Replace("'", @"'\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// A write whose outcome the client could not learn (no answer, or 503 until the window closed) is reported
    /// with its idempotency key: resending it with that key applies it at most once and tells what happened.
    /// </summary>
    private static async Task<int> WriteAsync(string command, string id, Func<Task<Outcome<KeyVersion>>> send, Func<Outcome<KeyVersion>, string> success)
    {
        try
        {
            var outcome = await send();
            var exit = Report(outcome, _ => success(outcome));
            if (outcome.Status == HttpStatusCode.ServiceUnavailable)
            {
                await Console.Error.WriteLineAsync($"actorha {command}: the outcome is unknown; to find out, resend it soon with --idempotency-key {id} (it is recognised until its partition has taken 10,000 more writes)");
            }

            return exit;
        }
        catch (OutcomeUnknownException e)
        {
            await Console.Error.WriteLineAsync($"actorha {command}: {e.Message}; to find out, resend it soon with --idempotency-key {id} (it is recognised until its partition has taken 10,000 more writes)");
            return 1;
        }
    }

    private static int Report<T>(Outcome<T> outcome, Func<T, string> success)
    {
        if (outcome.IsSuccess)
        {
            var text = success(outcome.Value!);
            if (text.Length > 0)
            {
                Console.WriteLine(text);
            }

            return 0;
        }

        var problem = outcome.Problem;
        Console.Error.WriteLine(problem is null
            ? $"HTTP {(int)outcome.Status} {outcome.Status}"
            : $"HTTP {(int)outcome.Status} {problem.Title}: {problem.Detail}");
        return 1;
    }

    private static async Task<byte[]> ReadStdinAsync(CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await using var stdin = Console.OpenStandardInput();
        await stdin.CopyToAsync(buffer, ct);
        return buffer.ToArray();
    }
}
