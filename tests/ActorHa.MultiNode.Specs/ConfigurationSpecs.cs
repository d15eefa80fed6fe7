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

    private static async Task<bool> ListensAsync(IReadOnlyDictionary<string, string> env, string[] flags, int port)
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
                    using var live = await http.GetAsync($"http://127.0.0.1:{port}/healthz/live");
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
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "the node did not stop");
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
