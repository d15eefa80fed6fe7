using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// Real node processes (the actorha program built next to these specs, under node/) on free loopback ports,
/// started by the same <see cref="LocalCluster"/> as `actorha up`. Logs stay in the data directory and are
/// printed when a spec fails.
/// </summary>
public sealed class SpecCluster : IAsyncDisposable
{
    private readonly ITestOutputHelper _output;

    public SpecCluster(ITestOutputHelper output, int nodes = 3, IReadOnlyDictionary<string, string>? settings = null)
    {
        _output = output;
        DataDir = Path.Combine(Path.GetTempPath(), "actorha-multinode", Guid.NewGuid().ToString("N"));
        Options = new LocalClusterOptions
        {
            Nodes = nodes,
            BaseHttpPort = Ports.FindFreeRange(nodes),
            BaseAkkaPort = Ports.FindFreeRange(nodes),
            DataDir = DataDir,
            NodeProgram = NodeProgram,
            Settings = settings ?? new Dictionary<string, string>(),
        };
        Cluster = new LocalCluster(Options);
    }

    public static string NodeProgram => Path.Combine(AppContext.BaseDirectory, "node", "actorha.dll");

    public string DataDir { get; }

    public LocalClusterOptions Options { get; }

    public LocalCluster Cluster { get; }

    /// <summary>Runs one step of a spec, named as a sentence, and reports how long it took.</summary>
    public async Task Step(string sentence, Func<Task> body)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await body();
        _output.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0} s] {sentence}");
    }

    public void DumpLogs()
    {
        foreach (var node in Cluster.Nodes)
        {
            _output.WriteLine($"---- {node.Name} ({node.LogFile}) ----");
            _output.WriteLine(LocalCluster.Tail(node.LogFile, 60));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // Leftover logs in /tmp are harmless.
        }
    }
}
