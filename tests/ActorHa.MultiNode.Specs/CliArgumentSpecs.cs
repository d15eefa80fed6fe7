using System.Diagnostics;
using System.Net;
using System.Text;
using ActorHa.Client;
using ActorHa.Launcher;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// The real `actorha` program given bad arguments: one line on stderr naming what is wrong, exit code 2, no stack
/// trace, no help dump, and nothing started or sent. Where a command would talk to a node, a fake node records
/// every request, so "nothing was sent" is seen, not assumed.
/// </summary>
public sealed class CliArgumentSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("--base-http-port must be a whole number between 1 and 65535, not '70000'", "--base-http-port", "70000")]
    [InlineData("--base-http-port must be between 1 and 65533 with 3 nodes", "--base-http-port", "65534")]
    [InlineData("--base-http-port must be a whole number between 1 and 65535, not '-5'", "--base-http-port", "-5")]
    [InlineData("--base-http-port must be a whole number between 1 and 65535, not '0'", "--base-http-port", "0")]
    [InlineData("--base-akka-port must be a whole number between 1 and 65535, not '70000'", "--base-akka-port", "70000")]
    [InlineData("--base-akka-port must be between 1 and 65532 with 4 nodes", "--base-akka-port", "65533", "--nodes", "4")]
    [InlineData("--base-http-port and --base-akka-port must be at least 3 apart", "--base-http-port", "9281", "--base-akka-port", "9282")]
    [InlineData("--ready-timeout must be a whole number between 1 and 86400, not '-1'", "--ready-timeout", "-1")]
    [InlineData("--ready-timeout must be a whole number between 1 and 86400, not '0'", "--ready-timeout", "0")]
    [InlineData("--nodes must be a whole number between 1 and 9, not '0'", "--nodes", "0")]
    [InlineData("--partitions must be a whole number between 1 and 4096, not '0'", "--partitions", "0")]
    public async Task Up_refuses_a_port_range_beyond_65535_a_port_below_1_and_a_timeout_below_1_second_with_one_line_and_exit_code_2_before_any_node_starts(string expected, params string[] flags)
    {
        // arrange
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-cli-args-spec", Guid.NewGuid().ToString("N"));
        // Ports and a timeout of our own for whatever the case does not set, so a regression cannot disturb anything else.
        var defaults = new[] { ("--base-http-port", "9281"), ("--base-akka-port", "9251"), ("--ready-timeout", "5") }
            .Where(d => !flags.Contains(d.Item1)).SelectMany(d => new[] { d.Item1, d.Item2 });

        // act
        var run = await CliProcess.RunAsync(Timeout, ["up", .. defaults, .. flags, "--data-dir", dataDir]);

        // assert: refused before the cluster (which creates its data directory first) was even set up
        AssertOneLineRefusal(run, "actorha up: ", expected);
        Assert.False(Directory.Exists(dataDir), "up created its data directory: it got as far as starting nodes");
    }

    [Theory]
    [InlineData("actorha bench load: --concurrency must be comma-separated whole numbers between 1 and 10000", "bench", "load", "--concurrency", "4,x")]
    [InlineData("actorha bench load: --duration must be a positive duration such as 10s", "bench", "load", "--duration", "0")]
    [InlineData("actorha bench load: --warmup must be a duration such as 10s", "bench", "load", "--warmup", "soon")]
    [InlineData("actorha bench load: --read-ratio must be a number between 0 and 1, not '1.5'", "bench", "load", "--read-ratio", "1.5")]
    [InlineData("actorha bench load: --value-bytes must be a whole number between 1 and 16777216, not '0'", "bench", "load", "--value-bytes", "0")]
    [InlineData("actorha bench load: --keys must be a whole number between 1 and 1000000, not '1MiB'", "bench", "load", "--keys", "1MiB")]
    [InlineData("actorha bench load: --journal memory needs a cluster the benchmark starts itself; it cannot change the journal of the nodes given with --url.", "bench", "load", "--journal", "memory", "--url", "http://127.0.0.1:9")]
    [InlineData("actorha bench failover: --nodes must be a whole number between 2 and 9, not '1'", "bench", "failover", "--nodes", "1")]
    [InlineData("actorha bench failover: --clients must be a whole number between 1 and 10000, not '0'", "bench", "failover", "--clients", "0")]
    [InlineData("actorha bench recovery: --events must be a whole number of at least 1, not '-3'", "bench", "recovery", "--events", "-3")]
    [InlineData("actorha chaos: --duration must be a positive duration such as 10s", "chaos", "--duration", "-5s")]
    [InlineData("actorha chaos: --faults must be one or more of kill, pause, partition", "chaos", "--faults", "kill,boom")]
    [InlineData("actorha chaos: --clients must be a whole number between 1 and 10000, not '0'", "chaos", "--clients", "0")]
    [InlineData("actorha node: --port must be a whole number between 0 and 65535, not '70000'", "node", "--port", "70000")]
    [InlineData("actorha node: --snapshot-every must be a whole number of at least 1, not '0'", "node", "--snapshot-every", "0")]
    public async Task Bench_chaos_and_node_refuse_bad_numbers_durations_and_fault_names_with_one_line_and_exit_code_2_before_starting_anything(string expected, params string[] args)
    {
        var run = await CliProcess.RunAsync(Timeout, args);

        AssertOneLineRefusal(run, "", expected);
    }

    [Theory]
    [InlineData("actorha bench failover: Argument 'nope' not recognized. Must be one of: 'kill', 'sigstop', 'leave'.", "bench", "failover", "--fault", "nope")]
    [InlineData("actorha bench load: Argument 'nope' not recognized. Must be one of: 'sqlite', 'postgres'.", "bench", "load", "--store", "nope")]
    [InlineData("actorha bench load: Argument 'disk' not recognized. Must be one of: 'store', 'memory'.", "bench", "load", "--journal", "disk")]
    public async Task A_value_outside_an_options_choices_lists_the_choices_on_one_line_without_tabs(string expected, params string[] args)
    {
        var run = await CliProcess.RunAsync(Timeout, args);

        AssertOneLineRefusal(run, "", expected);
        Assert.Equal(expected, run.Stderr.TrimEnd());
    }

    [Theory]
    [InlineData("actorha put: --if-match must be a version, a whole number of at least 1", "put", "k", "v", "--if-match", "abc")]
    [InlineData("actorha ls: --limit must be a whole number between 1 and 1000, not 'abc'", "ls", "--limit", "abc")]
    [InlineData("actorha node: --port must be a whole number between 0 and 65535, not 'abc'", "node", "--port", "abc")]
    [InlineData("actorha chaos: --seed must be a whole number", "chaos", "--seed", "x")]
    [InlineData("actorha put: Unrecognized command or argument 'extra'", "put", "k", "v", "extra")]
    public async Task A_value_that_does_not_parse_is_one_line_naming_the_option_and_the_kind_of_value_with_exit_code_2_not_the_help_text(string expected, params string[] args)
    {
        var run = await CliProcess.RunAsync(Timeout, args);

        AssertOneLineRefusal(run, "", expected);
        Assert.DoesNotContain("System.", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Usage:", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("é", "--idempotency-key must be printable ASCII (space to '~'); character 1 is U+00E9")]
    [InlineData("", "--idempotency-key must not be empty")]
    [InlineData("tab\there", "--idempotency-key must be printable ASCII (space to '~'); character 4 is U+0009")]
    [InlineData("129", "--idempotency-key must be at most 128 characters, not 129")]
    public async Task An_idempotency_key_that_http_cannot_carry_is_refused_with_exit_code_2_and_nothing_is_sent(string idempotencyKey, string expected)
    {
        // arrange
        using var node = new FakeNode();
        var key = idempotencyKey == "129" ? new string('k', 129) : idempotencyKey;

        // act
        var put = await CliProcess.RunAsync(Timeout, "put", "ikx", "v", "--idempotency-key", key, "--url", node.Url);
        var del = await CliProcess.RunAsync(Timeout, "del", "ikx", "--idempotency-key", key, "--url", node.Url);

        // assert
        AssertOneLineRefusal(put, "actorha put: ", expected);
        AssertOneLineRefusal(del, "actorha del: ", expected);
        Assert.DoesNotContain("may or may not have been applied", put.Stderr + del.Stderr, StringComparison.Ordinal);
        Assert.Empty(node.Requests);
    }

    [Fact]
    public async Task A_printable_ascii_idempotency_key_with_spaces_is_sent_as_given()
    {
        using var node = new FakeNode();

        var put = await CliProcess.RunAsync(Timeout, "put", "ikx", "v", "--idempotency-key", "order 17 ~!", "--url", node.Url, "--retry-for", "0");

        Assert.True(put.Exit == 0, put.ToString());
        Assert.Contains(node.Requests, r => r.StartsWith("PUT /v1/kv/ikx", StringComparison.Ordinal) && r.EndsWith("Idempotency-Key: order 17 ~!", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_cluster_client_given_an_idempotency_key_that_http_cannot_carry_throws_before_sending_and_never_reports_an_unknown_outcome()
    {
        // arrange
        using var node = new FakeNode();
        using var client = new ClusterClient([node.Url]);

        // act
        var put = await Record.ExceptionAsync(() => client.PutAsync("ikx", "v"u8.ToArray(), idempotencyKey: "é", retryFor: TimeSpan.FromSeconds(2)));
        var del = await Record.ExceptionAsync(() => client.DeleteAsync("ikx", idempotencyKey: "", retryFor: TimeSpan.FromSeconds(2)));
        var direct = await Record.ExceptionAsync(() => ActorHaClient.For(node.Url).PutAsync("ikx", "v"u8.ToArray(), idempotencyKey: "é"));

        // assert
        Assert.IsType<ArgumentException>(put);
        Assert.IsType<ArgumentException>(del);
        Assert.IsType<ArgumentException>(direct);
        Assert.Empty(node.Requests);
    }

    [Theory]
    [InlineData("get", "")]
    [InlineData("put", "", "v")]
    [InlineData("del", "")]
    public async Task Get_put_and_del_of_an_empty_key_are_all_refused_as_an_invalid_key_with_exit_code_2_and_nothing_is_sent(params string[] args)
    {
        using var node = new FakeNode();

        var run = await CliProcess.RunAsync(Timeout, [.. args, "--url", node.Url]);

        AssertOneLineRefusal(run, $"actorha {args[0]}: ", "Invalid key: The key must not be empty.");
        Assert.Equal("", run.Stdout);
        Assert.Empty(node.Requests);
    }

    [Theory]
    [InlineData("actorha put: --if-match and --create-only cannot be used together", "put", "k", "v", "--if-match", "1", "--create-only")]
    [InlineData("actorha put: --if-match must be a version, a whole number of at least 1 (versions start at 1), not '0'", "put", "k", "v", "--if-match", "0")]
    [InlineData("actorha put: --if-match must be a version, a whole number of at least 1 (versions start at 1), not '-1'", "put", "k", "v", "--if-match", "-1")]
    [InlineData("actorha del: --if-match must be a version, a whole number of at least 1 (versions start at 1), not '0'", "del", "k", "--if-match", "0")]
    public async Task If_match_must_be_a_version_of_at_least_1_and_cannot_be_combined_with_create_only(string expected, params string[] args)
    {
        using var node = new FakeNode();

        var run = await CliProcess.RunAsync(Timeout, [.. args, "--url", node.Url]);

        AssertOneLineRefusal(run, "", expected);
        Assert.DoesNotContain("If-None-Match", run.Stderr, StringComparison.Ordinal);
        Assert.Empty(node.Requests);
    }

    [Theory]
    [InlineData("it's")]
    [InlineData("'")]
    [InlineData("a''b $HOME `x` \\ \"q\"")]
    public async Task Ls_suggests_the_next_page_quoted_so_that_a_posix_shell_reads_back_exactly_the_key(string next)
    {
        // arrange: a node whose listing has a next page after a key with quotes in it
        var page = System.Text.Json.JsonSerializer.Serialize(new { keys = new[] { new { key = next, version = 1 } }, next });
        using var node = new FakeNode(path => path.StartsWith("/v1/kv?", StringComparison.Ordinal) ? page : null);

        // act
        var ls = await CliProcess.RunAsync(Timeout, "ls", "--limit", "1", "--url", node.Url, "--retry-for", "0");

        // assert: the suggested argument, given to sh, is the key
        Assert.True(ls.Exit == 0, ls.ToString());
        var suggestion = ls.Stdout.Split('\n').Single(l => l.StartsWith("(more: --after ", StringComparison.Ordinal)).TrimEnd();
        var argument = suggestion["(more: --after ".Length..^1];
        Assert.Equal(next, await ShellEchoAsync(argument));
    }

    private static void AssertOneLineRefusal(CliProcess.Result run, string prefix, string expected)
    {
        Assert.True(run.Exited && run.Exit == 2, run.ToString());
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, run.ToString());
        Assert.StartsWith(prefix, lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled", run.Stderr, StringComparison.Ordinal);
    }

    /// <summary>What `sh -c "printf %s WORD"` prints: the word as a POSIX shell reads it.</summary>
    private static async Task<string> ShellEchoAsync(string word)
    {
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("printf %s " + word);
        using var sh = Process.Start(psi)!;
        var output = await sh.StandardOutput.ReadToEndAsync();
        await sh.WaitForExitAsync();
        return output;
    }

    /// <summary>
    /// An HTTP server on loopback that records each request ("METHOD path" and its Idempotency-Key) and answers
    /// with the JSON the handler gives for its path, or 201 with a key version for writes, or 404.
    /// </summary>
    private sealed class FakeNode : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly List<string> _requests = [];
        private readonly Func<string, string?> _json;

        public FakeNode(Func<string, string?>? json = null)
        {
            _json = json ?? (_ => null);
            Url = $"http://127.0.0.1:{Ports.FindFreeRange(1)}";
            _listener.Prefixes.Add(Url + "/");
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public string Url { get; }

        /// <summary>Every request but the route lookups (GET /v1/cluster), which send nothing of the user's.</summary>
        public IReadOnlyList<string> Requests
        {
            get
            {
                lock (_requests)
                {
                    return [.. _requests];
                }
            }
        }

        public void Dispose() => _listener.Close();

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                var request = context.Request;
                var path = request.RawUrl ?? "";
                if (path != "/v1/cluster")
                {
                    lock (_requests)
                    {
                        _requests.Add($"{request.HttpMethod} {path} Idempotency-Key: {request.Headers["Idempotency-Key"]}");
                    }
                }

                var body = request.HttpMethod is "PUT" or "DELETE" ? """{"key":"ikx","version":1}""" : _json(path);
                context.Response.StatusCode = body is null ? 404 : request.HttpMethod == "PUT" ? 201 : 200;
                var bytes = Encoding.UTF8.GetBytes(body ?? "");
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(bytes);
                context.Response.Close();
            }
        }
    }
}
