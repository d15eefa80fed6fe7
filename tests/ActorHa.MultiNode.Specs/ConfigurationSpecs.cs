using System.Diagnostics;
using System.Globalization;
using ActorHa.Launcher;

namespace ActorHa.MultiNode.Specs;

/// <summary>`actorha node` configured as containers configure it: environment variables, then flags.</summary>
public sealed class ConfigurationSpecs
{
    [Fact]
    public async Task A_node_with_an_invalid_setting_stops_at_startup_with_one_clear_line_and_exit_code_2()
    {
        var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string> { ["ACTORHA__PARTITIONS"] = "abc" }, []);

        Assert.Equal(2, exitCode);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("ActorHa:Partitions", lines[0]);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Theory]
    [InlineData("ActorHa:AkkaProfile must be one of the files of", "ACTORHA__AKKAPROFILE", "nope")]
    [InlineData("ActorHa:AkkaProfile must be one of the files of", "ACTORHA__AKKAPROFILE", "../actorha")]
    [InlineData("ActorHa:HoconDir must be an existing directory, not '/nonexistent'", "ACTORHA__HOCONDIR", "/nonexistent")]
    [InlineData("ActorHa:ClusterName must be letters, digits, '-' and '_', not starting with '-' or '_', not 'bad name'", "ACTORHA__CLUSTERNAME", "bad name")]
    [InlineData("ActorHa:ClusterName must be letters, digits", "ACTORHA__CLUSTERNAME", "-dash")]
    [InlineData("ActorHa:Lease:Ttl must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not -1.00:00:00", "ACTORHA__LEASE__TTL", "-1")]
    [InlineData("ActorHa:RequestTimeout must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not 5.00:00:00", "ACTORHA__REQUESTTIMEOUT", "5")]
    [InlineData("ActorHa:AttemptTimeout must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not 00:00:00", "ACTORHA__ATTEMPTTIMEOUT", "0")]
    [InlineData("ActorHa:Host must be a host name or an IP address, not 'a b'", "ACTORHA__HOST", "a b")]
    [InlineData("ActorHa:HttpUrl must be scheme://host:port with no path", "ACTORHA__HTTPURL", "http://127.0.0.1:9481/sub")]
    [InlineData("ActorHa:ConnectionString is not a valid sqlite connection string", "ACTORHA__CONNECTIONSTRING", "Data Sourcex=1")]
    public async Task A_setting_that_used_to_crash_the_node_with_a_stack_trace_is_one_line_naming_it_and_exit_code_2(string expected, string variable, string value)
    {
        // act
        var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string> { [variable] = value }, []);

        // assert
        Assert.True(exitCode == 2, $"exit {exitCode}: {stderr}");
        Assert.StartsWith($"actorha node: invalid configuration: {expected}", OneLine(stderr));
    }

    [Fact]
    public async Task A_postgres_connection_string_with_an_unknown_keyword_is_a_configuration_error_with_exit_code_2()
    {
        var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string> { ["ACTORHA__STORE"] = "postgres", ["ACTORHA__CONNECTIONSTRING"] = "Hostx=1;Password=secret" }, []);

        Assert.True(exitCode == 2, $"exit {exitCode}: {stderr}");
        Assert.StartsWith("actorha node: invalid configuration: ActorHa:ConnectionString is not a valid postgres connection string:", OneLine(stderr));
        Assert.DoesNotContain("secret", stderr);
    }

    [Fact]
    public async Task A_postgres_store_that_cannot_be_reached_stops_the_node_with_one_line_naming_it_without_the_password_and_exit_code_5()
    {
        // arrange: a port nothing listens on, as when PostgreSQL is not up yet
        var port = Ports.FindFreeRange(1);
        var env = new Dictionary<string, string>
        {
            ["ACTORHA__STORE"] = "postgres",
            ["ACTORHA__CONNECTIONSTRING"] = $"Host=127.0.0.1;Port={port};Username=actorha;Password=secret;Database=kv;Timeout=5",
        };

        // act
        var (exitCode, _, stderr) = await RunToExitAsync(env, []);

        // assert
        Assert.True(exitCode == 5, $"exit {exitCode}: {stderr}");
        var line = OneLine(stderr);
        Assert.StartsWith($"actorha node: cannot reach the postgres store at 127.0.0.1:{port}/kv: Failed to connect", line);
        Assert.DoesNotContain("secret", stderr);
    }

    [Fact]
    public async Task A_sqlite_store_that_cannot_be_created_stops_the_node_with_one_line_and_exit_code_5()
    {
        var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string> { ["ACTORHA__CONNECTIONSTRING"] = "Data Source=/proc/actorha-cannot-be-here/actorha.db" }, []);

        Assert.True(exitCode == 5, $"exit {exitCode}: {stderr}");
        Assert.StartsWith("actorha node: cannot open the sqlite store at /proc/actorha-cannot-be-here/actorha.db:", OneLine(stderr));
    }

    [Fact]
    public async Task A_node_whose_lease_file_cannot_be_opened_stops_with_one_line_naming_it_and_exit_code_5()
    {
        // arrange: the journal's folder is fine, but where the lease file goes there is a directory
        var dir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "actorha.leases.db"));
        try
        {
            // act
            var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string> { ["ACTORHA__CONNECTIONSTRING"] = $"Data Source={dir}/actorha.db" }, []);

            // assert
            Assert.True(exitCode == 5, $"exit {exitCode}: {stderr}");
            Assert.StartsWith($"actorha node: cannot take this node's lease in the lease file {dir}/actorha.leases.db: SQLite Error 14", OneLine(stderr));
        }
        finally
        {
            TryDelete(dir);
        }
    }

    [Fact]
    public async Task A_node_on_a_damaged_store_stops_with_one_line_saying_so_and_exit_code_5_instead_of_reporting_ready()
    {
        // arrange: a store a node wrote to and left cleanly, then the journal's and snapshot store's pages overwritten
        // (what a truncated copy or a bad disk leaves); the partition-count record is intact, so the store still opens
        var dir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        var env = new Dictionary<string, string> { ["ACTORHA__CONNECTIONSTRING"] = $"Data Source={dir}/actorha.db" };
        try
        {
            Directory.CreateDirectory(dir);
            var http = Ports.FindFreeRange(1);
            Assert.True(await ListensAsync(env, ["--http", $"http://127.0.0.1:{http}"], http, ready: true));
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            DamageAllTablesBut("actorha_meta", Path.Combine(dir, "actorha.db"));

            // act
            var (exitCode, _, stderr) = await RunToExitAsync(env, []);

            // assert
            Assert.True(exitCode == 5, $"exit {exitCode}: {stderr}");
            Assert.StartsWith("actorha node: the store is damaged and this node cannot use it: SQLite Error 11: 'database disk image is malformed'.", OneLine(stderr));
        }
        finally
        {
            TryDelete(dir);
        }
    }

    private static void DamageAllTablesBut(string keep, string file)
    {
        int pageSize;
        List<long> roots;
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={file};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;";
            command.ExecuteNonQuery();
            command.CommandText = "PRAGMA page_size";
            pageSize = Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture);
            command.CommandText = $"SELECT rootpage FROM sqlite_master WHERE rootpage > 0 AND tbl_name <> '{keep}'";
            using var reader = command.ExecuteReader();
            roots = [];
            while (reader.Read())
            {
                roots.Add(reader.GetInt64(0));
            }
        }

        Assert.NotEmpty(roots);
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Write);
        var garbage = Enumerable.Repeat((byte)0xA5, pageSize).ToArray();
        foreach (var root in roots)
        {
            stream.Seek((root - 1) * pageSize, SeekOrigin.Begin);
            stream.Write(garbage);
        }
    }

    [Fact]
    public async Task A_node_given_an_akka_port_another_process_listens_on_refuses_with_one_line_and_exit_code_2_instead_of_sharing_it()
    {
        // arrange: a listener as Akka's transport makes one (.NET's ReuseAddress: SO_REUSEADDR and, on Linux, SO_REUSEPORT),
        // so the port could be shared with it
        var port = Ports.FindFreeRange(1);
        using var running = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        running.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
        running.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        running.Listen();

        // act
        var (exitCode, _, stderr) = await RunToExitAsync(new Dictionary<string, string>(), ["--port", port.ToString(CultureInfo.InvariantCulture), "--http", $"http://127.0.0.1:{Ports.FindFreeRange(1)}"]);

        // assert
        Assert.True(exitCode == 2, $"exit {exitCode}: {stderr}");
        Assert.Equal($"actorha node: cannot listen: the Akka remoting port 127.0.0.1:{port} (ActorHa:Port) is already in use by another process (another node still running?)", OneLine(stderr));
    }

    [Fact]
    public async Task Up_refuses_an_invalid_node_setting_in_one_line_with_exit_code_2_before_any_node_starts()
    {
        // arrange
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        var psi = UpProcess(dataDir, nodes: 1);
        psi.Environment["ACTORHA__REQUESTTIMEOUT"] = "5";

        // act
        using var up = Process.Start(psi)!;
        var stdout = up.StandardOutput.ReadToEndAsync();
        var stderr = up.StandardError.ReadToEndAsync();
        Assert.True(up.WaitForExit(TimeSpan.FromSeconds(60)), "up did not stop");

        // assert
        Assert.Equal(2, up.ExitCode);
        Assert.Equal("actorha up: invalid configuration: ActorHa:RequestTimeout must be between 00:00:00.001 and 00:10:00 (hh:mm:ss[.fff]), not 5.00:00:00.", OneLine(await stderr));
        Assert.Equal("", await stdout);
        Assert.False(Directory.Exists(dataDir), "up started a cluster");
    }

    [Fact]
    public async Task Up_says_so_and_exits_1_when_its_last_node_has_exited_instead_of_running_with_none()
    {
        // arrange: one node is enough, and its message must be singular
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        using var up = new Process { StartInfo = UpProcess(dataDir, nodes: 1) };
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        up.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        up.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        up.Start();
        up.BeginOutputReadLine();
        up.BeginErrorReadLine();
        string Out() { lock (stdout) { return stdout.ToString(); } }
        try
        {
            var ready = DateTime.UtcNow.AddSeconds(90);
            while (!Out().Contains("Press Ctrl+C", StringComparison.Ordinal) && !up.HasExited && DateTime.UtcNow < ready)
            {
                await Task.Delay(200);
            }

            var row = Out().Split('\n').FirstOrDefault(l => l.StartsWith("node1 ", StringComparison.Ordinal));
            Assert.True(row is not null, $"up never listed its node: {Out()}{stderr}");
            var pid = int.Parse(row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

            // act: kill -9 the only node
            Signals.Send(pid, Signals.SigKill);
            Assert.True(up.WaitForExit(TimeSpan.FromSeconds(30)), $"up kept running with no node: {Out()}");
            up.WaitForExit();

            // assert
            var all = Out();
            Assert.Equal(1, up.ExitCode);
            Assert.StartsWith($"Starting 1 node; store sqlite at {Path.Combine(dataDir, "actorha.db")}, logs in {Path.Combine(dataDir, "logs")}", all);
            Assert.Contains(": 1 member Up, 32 partitions owned.", all);
            Assert.Contains("node1 exited (code 137); no node is left.", all);
            Assert.DoesNotContain("keep serving", all);
            Assert.StartsWith("actorha up: every node has exited; stopping.", stderr.ToString());
        }
        finally
        {
            if (!up.HasExited)
            {
                up.Kill(entireProcessTree: true);
            }

            TryDelete(dataDir);
        }
    }

    [Fact]
    public Task Up_starts_a_node_the_cluster_downed_again_and_it_rejoins() =>
        // The fence is off: a thawed node must find itself downed and exit with code 4 on its own.
        UpRestartsStoppedNode3Async(fence: false, "node3 was downed by the cluster (exit code 4); starting it again to rejoin.");

    [Fact]
    public Task Up_starts_again_a_node_that_stayed_stopped_until_a_survivor_ended_it_and_it_rejoins() =>
        UpRestartsStoppedNode3Async(fence: true, "node3 was stopped and then killed (exit code 137: a survivor ends a node that stays stopped once it is downed, or at once if it holds a lock the other nodes wait for); starting it again to rejoin.");

    [Fact]
    public Task Up_starts_again_a_node_a_survivor_ended_while_up_itself_was_stopped_and_never_saw_it_stopped() =>
        UpRestartsStoppedNode3Async(fence: true, "node3 was stopped and then killed (exit code 137: a survivor ends a node that stays stopped once it is downed, or at once if it holds a lock the other nodes wait for); starting it again to rejoin.", stopUpMeanwhile: true);

    private async Task UpRestartsStoppedNode3Async(bool fence, string expected, bool stopUpMeanwhile = false)
    {
        // arrange: three nodes
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        using var up = new Process { StartInfo = UpProcess(dataDir, nodes: 3) };
        up.StartInfo.Environment["ACTORHA__FENCEDOWNEDPROCESSES"] = fence ? "true" : "false";
        var stdout = new System.Text.StringBuilder();
        up.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        up.ErrorDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        string Out() { lock (stdout) { return stdout.ToString(); } }
        try
        {
            up.Start();
            up.BeginOutputReadLine();
            up.BeginErrorReadLine();
            var ready = DateTime.UtcNow.AddSeconds(120);
            while (!Out().Contains("Press Ctrl+C", StringComparison.Ordinal) && !up.HasExited && DateTime.UtcNow < ready)
            {
                await Task.Delay(200);
            }

            string[] Row(string node) => Out().Split('\n').First(l => l.StartsWith(node + " ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(Out().Contains("Press Ctrl+C", StringComparison.Ordinal), Out());
            var node3 = int.Parse(Row("node3")[1], CultureInfo.InvariantCulture);
            var node1 = new ActorHa.Client.ActorHaClient(new HttpClient { BaseAddress = new Uri(Row("node1")[2] + "/") });

            // act: freeze node3. Without the fence, thaw it once the others have downed it: it finds itself removed and
            // exits with code 4. With the fence, leave it stopped: a survivor ends it (and up may have started it again
            // before a poll here could see two members, so there is nothing to wait for).
            if (stopUpMeanwhile)
            {
                // up cannot watch its nodes while it is stopped: only the survivor's log line can tell it what happened
                Signals.Send(up.Id, Signals.SigStop);
            }

            Signals.Send(node3, Signals.SigStop);
            if (stopUpMeanwhile)
            {
                // node3 dies (a zombie, as its parent cannot reap it yet) once a survivor ends it; then up resumes
                var ended = DateTime.UtcNow.AddSeconds(60);
                while (ProcessState(node3) is not (null or 'Z') && DateTime.UtcNow < ended)
                {
                    await Task.Delay(100);
                }

                Signals.Send(up.Id, Signals.SigCont);
            }

            if (!fence)
            {
                var downed = DateTime.UtcNow.AddSeconds(60);
                while (await UpMembersAsync(node1) != 2 && DateTime.UtcNow < downed)
                {
                    await Task.Delay(200);
                }

                Signals.Send(node3, Signals.SigCont);
            }

            // assert: up says so and starts it again, and the cluster has three members Up again
            var rejoined = DateTime.UtcNow.AddSeconds(90);
            while (DateTime.UtcNow < rejoined && !(Out().Contains(expected, StringComparison.Ordinal) && await UpMembersAsync(node1) == 3))
            {
                await Task.Delay(250);
            }

            // The failure message carries what up printed and what the nodes logged about the stop: the data directory,
            // logs included, is deleted below, and a CI run keeps only the message.
            Assert.True(Out().Contains(expected, StringComparison.Ordinal), $"up did not print \"{expected}\"{Environment.NewLine}{Diagnose(dataDir, Out())}");
            Assert.True(await UpMembersAsync(node1) == 3, $"the cluster has not three members Up again{Environment.NewLine}{Diagnose(dataDir, Out())}");
            Assert.False(up.HasExited, Out());
        }
        finally
        {
            if (!up.HasExited)
            {
                Signals.Send(up.Id, Signals.SigTerm);
                if (!up.WaitForExit(TimeSpan.FromSeconds(30)))
                {
                    up.Kill(entireProcessTree: true);
                }
            }

            TryDelete(dataDir);
        }
    }

    /// <summary>The tail of up's output, then each node log's lines about stops, downings, fencing and exits.</summary>
    private static string Diagnose(string dataDir, string upOutput)
    {
        var text = new System.Text.StringBuilder("up printed (last 12 lines):").AppendLine();
        foreach (var line in upOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).TakeLast(12))
        {
            text.Append("  ").AppendLine(line.TrimEnd());
        }

        string[] topics = ["Fence", "SBR", "down", "Down", "unreachable", "Unreachable", "exited", "====", "Leader"];
        var logs = Path.Combine(dataDir, "logs");
        foreach (var log in Directory.Exists(logs) ? Directory.GetFiles(logs, "*.log").Order().ToArray() : [])
        {
            text.Append(Path.GetFileName(log)).AppendLine(":");
            foreach (var line in LocalCluster.Tail(log, int.MaxValue).Split('\n').Where(l => topics.Any(t => l.Contains(t, StringComparison.Ordinal))).TakeLast(15))
            {
                text.Append("  ").AppendLine(line.Length > 220 ? line[..220] : line.TrimEnd());
            }
        }

        return text.ToString();
    }

    /// <summary>The third field of /proc/PID/stat (R, S, T, Z…); null once the process is gone.</summary>
    private static char? ProcessState(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0];
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task<int> UpMembersAsync(ActorHa.Client.ActorHaClient client)
    {
        try
        {
            using var cluster = await client.ClusterAsync();
            return cluster.RootElement.GetProperty("members").EnumerateArray()
                .Count(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
    }

    [Fact]
    public async Task Up_keeps_supervising_its_nodes_when_their_log_cannot_be_written()
    {
        // arrange: node1's log is /dev/full, which refuses every write with "no space left", as a full disk does
        var dataDir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dataDir, "logs"));
        File.CreateSymbolicLink(Path.Combine(dataDir, "logs", "node1.log"), "/dev/full");
        using var up = new Process { StartInfo = UpProcess(dataDir, nodes: 1) };
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        up.OutputDataReceived += (_, e) => { lock (stdout) { stdout.AppendLine(e.Data); } };
        up.ErrorDataReceived += (_, e) => { lock (stderr) { stderr.AppendLine(e.Data); } };
        string Out() { lock (stdout) { return stdout.ToString(); } }
        string Err() { lock (stderr) { return stderr.ToString(); } }
        try
        {
            // act: up starts the node, whose every log line fails to be written
            up.Start();
            up.BeginOutputReadLine();
            up.BeginErrorReadLine();
            var ready = DateTime.UtcNow.AddSeconds(90);
            while (!Out().Contains("Press Ctrl+C", StringComparison.Ordinal) && !up.HasExited && DateTime.UtcNow < ready)
            {
                await Task.Delay(200);
            }

            // assert: the cluster came up, up said once that the log fails, and up still supervises the node: it reports
            // the node's exit and then exits itself, as it does with a writable log
            Assert.False(up.HasExited, $"up exited: {Out()}{Err()}");
            var row = Out().Split('\n').FirstOrDefault(l => l.StartsWith("node1 ", StringComparison.Ordinal));
            Assert.True(row is not null, $"up never listed its node: {Out()}{Err()}");
            Assert.Contains(": 1 member Up, 32 partitions owned.", Out());
            Assert.Single(Err().Split('\n'), l => l.StartsWith($"actorha: cannot write {Path.Combine(dataDir, "logs", "node1.log")}", StringComparison.Ordinal));
            var pid = int.Parse(row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            Signals.Send(pid, Signals.SigKill);
            Assert.True(up.WaitForExit(TimeSpan.FromSeconds(30)), $"up kept running with no node: {Out()}");
            up.WaitForExit();
            Assert.Equal(1, up.ExitCode);
            Assert.Contains("node1 exited (code 137); no node is left.", Out());
        }
        finally
        {
            if (!up.HasExited)
            {
                up.Kill(entireProcessTree: true);
            }

            TryDelete(dataDir);
        }
    }

    private static ProcessStartInfo UpProcess(string dataDir, int nodes)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     SpecCluster.NodeProgram, "up", "--nodes", nodes.ToString(CultureInfo.InvariantCulture), "--data-dir", dataDir,
                     "--base-http-port", Ports.FindFreeRange(nodes).ToString(CultureInfo.InvariantCulture),
                     "--base-akka-port", Ports.FindFreeRange(nodes).ToString(CultureInfo.InvariantCulture), "--ready-timeout", "60",
                 })
        {
            psi.ArgumentList.Add(arg);
        }

        return psi;
    }

    private static string OneLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got {lines.Length}: {stderr}");
        Assert.DoesNotContain("   at ", stderr);
        return lines[0].TrimEnd('\r');
    }

    [Fact]
    public async Task Environment_variables_configure_a_node_and_command_line_flags_win_over_them()
    {
        var fromEnvironment = Ports.FindFreeRange(1);
        var fromFlag = Ports.FindFreeRange(1);
        var env = new Dictionary<string, string>
        {
            ["ACTORHA__HTTPURL"] = $"http://127.0.0.1:{fromEnvironment}",
            ["ACTORHA__PORT"] = Ports.FindFreeRange(1).ToString(CultureInfo.InvariantCulture),
        };

        // Environment only: the node listens where ACTORHA__HTTPURL says.
        Assert.True(await ListensAsync(env, [], fromEnvironment));

        // A flag beats the environment variable.
        Assert.True(await ListensAsync(env, ["--http", $"http://127.0.0.1:{fromFlag}"], fromFlag));
    }

    /// <param name="ready">Wait for /healthz/ready instead of /healthz/live.</param>
    private static async Task<bool> ListensAsync(IReadOnlyDictionary<string, string> env, string[] flags, int port, bool ready = false)
    {
        using var process = Start(env, flags, out var dataDir);
        // Drain the node's log so a full pipe never blocks it.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && !process.HasExited)
            {
                try
                {
                    using var live = await http.GetAsync($"http://127.0.0.1:{port}/healthz/{(ready ? "ready" : "live")}");
                    if (live.IsSuccessStatusCode)
                    {
                        return true;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    // not listening yet
                }

                await Task.Delay(200);
            }

            return false;
        }
        finally
        {
            Signals.Send(process.Id, Signals.SigTerm);
            process.WaitForExit(30_000);
            TryDelete(dataDir);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(IReadOnlyDictionary<string, string> env, string[] flags)
    {
        using var process = Start(env, flags, out var dataDir);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the node did not stop");
        }

        TryDelete(dataDir);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static Process Start(IReadOnlyDictionary<string, string> env, string[] flags, out string dataDir)
    {
        dataDir = Path.Combine(Path.GetTempPath(), "actorha-config-spec", Guid.NewGuid().ToString("N"));
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { SpecCluster.NodeProgram, "node", "--data-dir", dataDir }.Concat(flags))
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env)
        {
            psi.Environment[key] = value;
        }

        var process = Process.Start(psi)!;
        return process;
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in /tmp are harmless.
        }
    }
}
