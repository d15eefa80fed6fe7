using System.CommandLine;
using System.Text;
using System.Text.Json;
using ActorHa.Client;

namespace ActorHa.Cli.Commands;

/// <summary>`actorha put|get|del|ls|status`: thin commands over <see cref="ActorHaClient"/>.</summary>
public static class KvCommands
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static IEnumerable<Command> Create()
    {
        var url = new Option<string>("--url") { Description = "Any node's HTTP URL.", DefaultValueFactory = _ => "http://127.0.0.1:8081", Recursive = false };
        var key = new Argument<string>("key") { Description = "The key." };

        var value = new Argument<string>("value") { Description = "The value (UTF-8 text); use - to read bytes from stdin." };
        var ifMatch = new Option<long?>("--if-match") { Description = "Write only if the key is at this version (compare-and-set)." };
        var createOnly = new Option<bool>("--create-only") { Description = "Write only if the key does not exist." };
        var retryFor = new Option<string>("--retry-for")
        {
            Description = "Keep resending a write that got 503 or lost its connection (a partition moving after a failure) for this long, e.g. 10s; 0 sends once. Every attempt carries the same Idempotency-Key, so the write is applied at most once.",
            DefaultValueFactory = _ => "10s",
        };
        var idempotencyKey = new Option<string?>("--idempotency-key") { Description = "The write's Idempotency-Key (default: a new one per command)." };
        var put = new Command("put", "Write a value.") { key, value, url, ifMatch, createOnly, retryFor, idempotencyKey };
        put.SetAction((parse, ct) => Reachable("put", parse, url, async () =>
        {
            var text = parse.GetValue(value)!;
            var bytes = text == "-" ? await ReadStdinAsync(ct) : Encoding.UTF8.GetBytes(text);
            var expected = parse.GetValue(createOnly) ? 0 : parse.GetValue(ifMatch);
            var outcome = await WriteAsync(parse, url, retryFor, idempotencyKey, (client, id, c) => client.PutAsync(parse.GetValue(key)!, bytes, expected, c, id), ct);
            return outcome is null ? 2 : Report(outcome, kv => $"{kv.Key} version {kv.Version} ({((int)outcome.Status == 201 ? "created" : "updated")})");
        }));

        var get = new Command("get", "Read a value; prints it to stdout and its version to stderr.") { key, url };
        get.SetAction((parse, ct) => Reachable("get", parse, url, async () =>
        {
            var outcome = await Client(parse, url).GetAsync(parse.GetValue(key)!, ct);
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
        del.SetAction((parse, ct) => Reachable("del", parse, url, async () =>
        {
            var outcome = await WriteAsync(parse, url, retryFor, idempotencyKey, (client, id, c) => client.DeleteAsync(parse.GetValue(key)!, parse.GetValue(ifMatch), c, id), ct);
            return outcome is null ? 2 : Report(outcome, kv => $"{kv.Key} deleted at version {kv.Version}");
        }));

        var prefix = new Option<string?>("--prefix") { Description = "Only keys starting with this." };
        var limit = new Option<int?>("--limit") { Description = "Page size (1-1000, default 100)." };
        var after = new Option<string?>("--after") { Description = "Continue after this key (the previous page's next)." };
        var ls = new Command("ls", "List keys with their versions.") { url, prefix, limit, after };
        ls.SetAction((parse, ct) => Reachable("ls", parse, url, async () =>
        {
            var outcome = await Client(parse, url).ListAsync(parse.GetValue(prefix), parse.GetValue(limit), parse.GetValue(after), ct);
            return Report(outcome, list =>
                string.Join(Environment.NewLine, list.Keys.Select(k => $"{k.Key}\t{k.Version}"))
                + (list.Next is null ? "" : $"{Environment.NewLine}(more: --after '{list.Next}')"));
        }));

        var status = new Command("status", "Show members and partition owners as JSON.") { url };
        status.SetAction(async (parse, ct) =>
        {
            try
            {
                using var doc = await Client(parse, url).ClusterAsync(ct);
                Console.WriteLine(JsonSerializer.Serialize(doc.RootElement, Indented));
                return 0;
            }
            catch (HttpRequestException e)
            {
                await Console.Error.WriteLineAsync($"actorha status: {e.Message}");
                return 1;
            }
        });

        var ready = new Command("ready", "Exit 0 if the node at --url is ready (member Up, shard region registered), else 1. For health checks.") { url };
        ready.SetAction(async (parse, ct) => await Client(parse, url).IsReadyAsync(ct) ? 0 : 1);

        return [put, get, del, ls, status, ready];
    }

    private static ActorHaClient Client(ParseResult parse, Option<string> url) => ActorHaClient.For(parse.GetValue(url)!);

    /// <summary>A node that cannot be reached is a one-line error (exit 1), not a stack trace.</summary>
    private static async Task<int> Reachable(string command, ParseResult parse, Option<string> url, Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (HttpRequestException e)
        {
            await Console.Error.WriteLineAsync($"actorha {command}: cannot reach {parse.GetValue(url)}: {e.Message}");
            return 1;
        }
        catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
        {
            await Console.Error.WriteLineAsync($"actorha {command}: {parse.GetValue(url)} did not answer in time; a write's outcome is unknown (retry it with the same --idempotency-key)");
            return 1;
        }
    }

    /// <summary>
    /// One write with its Idempotency-Key (--idempotency-key or a new one), resent while --retry-for allows;
    /// null when --retry-for is not a duration (already reported).
    /// </summary>
    private static async Task<Outcome<KeyVersion>?> WriteAsync(
        ParseResult parse, Option<string> url, Option<string> retryFor, Option<string?> idempotencyKey,
        Func<ActorHaClient, string, CancellationToken, Task<Outcome<KeyVersion>>> send, CancellationToken ct)
    {
        var text = parse.GetValue(retryFor)!;
        if (!Durations.TryParse(text, out var window) || window < TimeSpan.Zero)
        {
            await Console.Error.WriteLineAsync($"actorha: --retry-for must be a duration such as 10s, 500ms or 0, not '{text}'.");
            return null;
        }

        var client = Client(parse, url);
        var id = parse.GetValue(idempotencyKey) ?? Guid.NewGuid().ToString();
        return await ActorHaClient.RetryingWriteAsync(c => send(client, id, c), window, ct);
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
