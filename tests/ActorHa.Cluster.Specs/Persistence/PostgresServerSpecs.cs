using ActorHa.Launcher;

namespace ActorHa.Cluster.Specs.Persistence;

/// <summary>The throw-away PostgreSQL server the specs, the benchmarks and the chaos runs start.</summary>
public sealed class PostgresServerSpecs
{
    [Fact]
    public void A_throw_away_server_keeps_its_shared_memory_in_its_data_directory_and_stops_with_every_one_of_its_processes_leaving_nothing_behind()
    {
        // arrange: a server of its own, and its postmaster with the children it runs
        var server = PostgresServer.StartNew();
        var dataDir = server.DataDir;
        var postmaster = int.Parse(File.ReadLines(Path.Combine(dataDir, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        var family = ChildrenOf(postmaster).Append(postmaster).ToList();
        Assert.True(family.Count > 1, "the postmaster should be running its background processes");
        var sharedMemory = File.ReadAllText($"/proc/{postmaster}/maps");
        Assert.DoesNotContain("/dev/shm/", sharedMemory, StringComparison.Ordinal); // there it would outlive an immediate stop

        // act
        server.Dispose();

        // assert
        Assert.False(Directory.Exists(dataDir), $"{dataDir} was left behind");
        Assert.All(family, pid => Assert.False(IsAlive(pid), $"process {pid} outlived the server"));
    }

    [Fact]
    public void Starting_a_server_removes_data_directories_whose_postmaster_is_gone_and_keeps_those_whose_postmaster_or_initdb_runs()
    {
        // arrange: what a killed test host leaves behind (its postmaster's pid, now dead), and a directory in use
        using var finished = System.Diagnostics.Process.Start("true")!;
        finished.WaitForExit();
        var stale = FakeDataDir(finished.Id);
        var shutDown = FakeDataDir(postmasterPid: null);
        var inUse = FakeDataDir(Environment.ProcessId);
        var initdbAtWork = FakeDataDir(-Environment.ProcessId); // a standalone backend's lock file holds its PID negated

        // act
        PostgresServer.RemoveStaleDataDirectories();

        // assert
        Assert.False(Directory.Exists(stale), "a directory whose postmaster is gone should be removed");
        Assert.False(Directory.Exists(shutDown), "a directory whose server was shut down should be removed");
        Assert.True(Directory.Exists(inUse), "a directory whose postmaster runs must be kept");
        Assert.True(Directory.Exists(initdbAtWork), "a directory whose standalone backend (initdb) runs must be kept");
        Directory.Delete(inUse, recursive: true);
        Directory.Delete(initdbAtWork, recursive: true);
    }

    /// <param name="postmasterPid">null: a server that was shut down (postmaster.opts left, postmaster.pid removed).</param>
    private static string FakeDataDir(int? postmasterPid)
    {
        var dir = Path.Combine(Path.GetTempPath(), "actorha-pg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "base"));
        File.WriteAllText(Path.Combine(dir, "postmaster.opts"), "postgres -D " + dir);
        if (postmasterPid is { } pid)
        {
            File.WriteAllText(Path.Combine(dir, "postmaster.pid"), $"{pid}\n{dir}\n");
        }

        File.WriteAllText(Path.Combine(dir, "base", "data"), "x");
        return dir;
    }

    private static IEnumerable<int> ChildrenOf(int parent) =>
        Directory.EnumerateDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && Stat(pid) is { } stat && stat.Parent == parent)
            .ToList();

    private static bool IsAlive(int pid) => Stat(pid) is { State: not 'Z' };

    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces, so parse after the last ')'.
    private static (char State, int Parent)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (fields[0][0], int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (IOException)
        {
            return null;
        }
    }
}
