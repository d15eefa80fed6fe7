using System.Diagnostics;

namespace ActorHa.MultiNode.Specs;

/// <summary>Runs the real actorha program (built next to these specs) as a separate process, as users run it.</summary>
public static class CliProcess
{
    public sealed record Result(bool Exited, int Exit, string Stdout, string Stderr)
    {
        public override string ToString() => Exited ? $"exit {Exit}; stdout: {Stdout}; stderr: {Stderr}" : $"still running, killed; stdout: {Stdout}; stderr: {Stderr}";
    }

    /// <summary>Runs `actorha args…`; a run that outlasts <paramref name="timeout"/> is killed with its children and reported as not exited.</summary>
    public static async Task<Result> RunAsync(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(SpecCluster.NodeProgram);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // Benchmarks and chaos runs start clusters of their own: take them down too.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new Result(false, -1, await stdout, await stderr);
        }

        return new Result(true, process.ExitCode, await stdout, await stderr);
    }
}
