using System.Diagnostics;
using System.Text.Json;
using ActorHa.Launcher;
using Xunit.Abstractions;

namespace ActorHa.MultiNode.Specs;

/// <summary>
/// Our multi-node spec harness, in the shape of Akka's MultiNodeSpec (which is not served here): named roles
/// ("first", "second", …), each a real node process (the actorha program built next to these specs, under
/// node/) on free loopback ports, started by the same <see cref="LocalCluster"/> as `actorha up`. The spec
/// process is the conductor: it runs steps named as sentences, runs code on a role, waits at barriers until
/// every named role has reached a state, and injects faults: <see cref="Kill"/>, <see cref="Freeze"/>/<see cref="Thaw"/>,
/// <see cref="Blackhole"/>/<see cref="Heal"/> (a real cut through Akka.Remote's throttler) and <see cref="Leave"/>.
/// Logs stay in the data directory and are printed when a spec fails.
/// </summary>
public sealed class SpecCluster : IAsyncDisposable
{
    public static readonly string[] RoleNames = ["first", "second", "third", "fourth", "fifth"];

    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    // The last view each node answered a barrier condition with, for the message of a barrier that times out.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _observed = new();

    public SpecCluster(ITestOutputHelper output, int nodes = 3, IReadOnlyDictionary<string, string>? settings = null, bool faultInjection = false)
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
            FaultInjection = faultInjection,
        };
        Cluster = new LocalCluster(Options);
        Roles = RoleNames.Take(nodes).ToList();
    }

    public static string NodeProgram => Path.Combine(AppContext.BaseDirectory, "node", "actorha.dll");

    public string DataDir { get; }

    public LocalClusterOptions Options { get; }

    public LocalCluster Cluster { get; }

    public IReadOnlyList<string> Roles { get; }

    /// <summary>The node process playing a role.</summary>
    public LocalNode this[string role]
    {
        get
        {
            var index = Roles.ToList().IndexOf(role);
            return index >= 0 ? Cluster[index + 1] : throw new ArgumentException($"No role '{role}' in this spec (roles: {string.Join(", ", Roles)}).", nameof(role));
        }
    }

    public string RoleOf(LocalNode node) => Roles[node.Index - 1];

    /// <summary>Runs one step of a spec, named as a sentence, and reports when it ended and how long it took.</summary>
    public async Task Step(string sentence, Func<Task> body)
    {
        var step = Stopwatch.StartNew();
        await body();
        _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s, {step.Elapsed.TotalSeconds,5:0.0} s] {sentence}");
    }

    /// <summary>Starts every role and waits until all are Up and every partition has an owner.</summary>
    public async Task StartAll(TimeSpan? timeout = null)
    {
        Cluster.StartAll();
        await Cluster.WaitUntilReadyAsync(timeout ?? TimeSpan.FromSeconds(90));
    }

    /// <summary>Runs code against the node of one role (Akka's runOn).</summary>
    public Task RunOn(string role, Func<LocalNode, Task> body) => body(this[role]);

    /// <summary>
    /// Waits until every listed role has reached the state <paramref name="reached"/> describes (Akka's
    /// enterBarrier, with the spec process as the conductor). Times out naming the roles that never arrived.
    /// </summary>
    public async Task Barrier(string name, IEnumerable<string> roles, Func<LocalNode, CancellationToken, Task<bool>> reached, TimeSpan? timeout = null)
    {
        var waiting = roles.ToList();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        // What kept each role away the last time it was asked: its view, or why it did not answer.
        var last = new Dictionary<string, string>();
        while (true)
        {
            var arrived = new List<string>();
            foreach (var role in waiting)
            {
                try
                {
                    if (await reached(this[role], cts.Token))
                    {
                        arrived.Add(role);
                    }
                    else
                    {
                        last[role] = _observed.TryGetValue(this[role].Name, out var seen) ? seen : "not there yet";
                    }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
                {
                    // Not there yet: a node that is starting or shutting down may not answer. A request cut short by
                    // the barrier's own deadline is not the node's answer, so it does not overwrite the last one.
                    if (!cts.IsCancellationRequested || !last.ContainsKey(role))
                    {
                        last[role] = $"{e.GetType().Name}: {e.Message}";
                    }
                }
            }

            waiting.RemoveAll(arrived.Contains);
            if (waiting.Count == 0)
            {
                _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0} s] barrier '{name}' passed");
                return;
            }

            if (cts.IsCancellationRequested)
            {
                var why = string.Join("; ", waiting.Select(r => $"{r} (port {this[r].AkkaPort}, {(this[r].IsRunning ? $"pid {this[r].Pid}" : "not running")}): {last.GetValueOrDefault(r, "never asked")}"));
                throw new TimeoutException($"Barrier '{name}': {string.Join(", ", waiting)} did not arrive in time. Last seen: {why}");
            }

            try
            {
                await Task.Delay(100, cts.Token);
            }
            catch (OperationCanceledException)
            {
                // One last look happens in the next round.
            }
        }
    }

    /// <summary>A barrier condition: the node sees exactly these roles as Up and reachable, and each partition owned by one of them.</summary>
    public Func<LocalNode, CancellationToken, Task<bool>> SeesMembers(params string[] roles)
    {
        var expected = roles.Select(r => this[r].AkkaPort).Order().ToList();
        return async (node, ct) =>
        {
            var view = await ViewOf(node, ct);
            _observed[node.Name] = $"members [{string.Join(", ", view.All)}], up and reachable [{string.Join(", ", view.Up)}], " +
                $"{view.Owners.Count(o => o is null)} partitions without an owner, owners [{string.Join(", ", view.Owners.Where(o => o is not null).Distinct().Order())}]; expected [{string.Join(", ", expected)}]";
            return view.Up.SequenceEqual(expected) && view.All.SequenceEqual(expected) && view.Owners.All(o => o is { } port && expected.Contains(port));
        };
    }

    /// <summary>
    /// A node owning some partitions (the last such, so not the first node, whose loss also moves the sharding
    /// coordinator), another node to observe from, and a key with <paramref name="keyPrefix"/> that the first owns.
    /// </summary>
    public static async Task<(LocalNode Victim, LocalNode Observer, string Key)> VictimObserverAndKey(LocalCluster cluster, string keyPrefix)
    {
        using var doc = await cluster[1].Client.ClusterAsync();
        var owners = doc.RootElement.GetProperty("partitions").EnumerateArray()
            .ToDictionary(p => p.GetProperty("partition").GetInt32(), p => p.GetProperty("owner").GetString() ?? "");
        var victim = cluster.Nodes.Last(n => owners.Values.Any(o => o.EndsWith($":{n.AkkaPort}", StringComparison.Ordinal)));
        var observer = cluster.Nodes.First(n => n != victim);
        var map = new ActorHa.Domain.PartitionMap(owners.Count);
        var key = Enumerable.Range(0, 10_000).Select(i => $"{keyPrefix}{i}")
            .First(k => owners[map.For(k).Value].EndsWith($":{victim.AkkaPort}", StringComparison.Ordinal));
        return (victim, observer, key);
    }

    /// <summary>
    /// SIGSTOP at a moment the node holds no SQLite write lock: stops it, waits until every thread has stopped, and
    /// resumes it to try again a little later while /proc/locks shows it holding a POSIX write lock (the WAL's write
    /// lock is one on the -shm file) or its journal writer's turn (an exclusive flock, Persistence/JournalWriterTurn).
    /// A node frozen inside a commit (of the journal or of the lease file) stalls every node's writes or lease renewals
    /// until the file-lock fence ends it, a case of its own (its specs); specs of what the lease alone does, and of the
    /// downed-member fence, use this.
    /// </summary>
    public static Task FreezeOutsideSqliteCommit(LocalCluster cluster, LocalNode node) =>
        FreezeUnless(cluster, node, pid => HoldsWriteLock(pid, onInodes: null), "an SQLite write lock");

    /// <summary>
    /// SIGSTOP at a moment the node is inside a lease transaction: it holds the lease file's WAL write lock (a POSIX
    /// write lock on byte 120 of <c>actorha.leases.db-shm</c>, taken by BEGIN IMMEDIATE and kept until COMMIT). A node
    /// lease's renewal holds it for a few milliseconds every 150 ms. Returns how many stops it took.
    /// </summary>
    public static Task<int> FreezeInsideLeaseTransaction(LocalCluster cluster, LocalNode node)
    {
        var shm = Path.Combine(cluster.DataDir, "actorha.leases.db-shm");
        var inode = Inodes(shm).SingleOrDefault()
            ?? throw new InvalidOperationException($"{shm} does not exist: the nodes keep their leases elsewhere, or not in WAL mode.");
        return FreezeHolding(cluster, node, pid => HoldsLock(pid, "POSIX", inode, fromByte: "120"), "the lease file's write lock");
    }

    /// <summary>
    /// SIGSTOP at a moment the node is inside a journal commit: it holds its journal writer's turn, an exclusive flock
    /// on <c>actorha.db.writer-lock</c> taken before BEGIN and kept until after COMMIT (Persistence/JournalWriterTurn).
    /// The node must be writing meanwhile. Returns how many stops it took.
    /// </summary>
    public static Task<int> FreezeInsideJournalCommit(LocalCluster cluster, LocalNode node)
    {
        var lockFile = Path.Combine(cluster.DataDir, "actorha.db.writer-lock");
        var inode = Inodes(lockFile).SingleOrDefault()
            ?? throw new InvalidOperationException($"{lockFile} does not exist: the nodes' journal is elsewhere, or not written by ActorHa's writer.");
        return FreezeHolding(cluster, node, pid => HoldsLock(pid, "FLOCK", inode, fromByte: null), "the journal writers' turn");
    }

    /// <summary>
    /// Watches /proc/locks without pause until the node holds the lock, stops it, and checks it still holds it once
    /// every thread has stopped; otherwise resumes it and tries again.
    /// </summary>
    private static async Task<int> FreezeHolding(LocalCluster cluster, LocalNode node, Func<int, bool> holds, string what)
    {
        var pid = node.Pid ?? throw new InvalidOperationException($"{node.Name} is not running.");
        var deadline = Stopwatch.StartNew();
        for (var stops = 1; deadline.Elapsed < TimeSpan.FromSeconds(60); stops++)
        {
            while (!holds(pid))
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"{node.Name} (pid {pid}) was never seen holding {what} in 60 s.");
                }
            }

            await StopAllThreads(cluster, node, pid);
            if (holds(pid))
            {
                return stops;
            }

            cluster.Thaw(node.Index);
        }

        throw new TimeoutException($"{node.Name} (pid {pid}) let go of {what} before it stopped, at every SIGSTOP for 60 s.");
    }

    private static bool HoldsLock(int pid, string kind, string inode, string? fromByte) =>
        File.ReadLines("/proc/locks").Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => f.Length > 6 && f[1] == kind && f[3] == "WRITE" && f[4] == pid.ToString(System.Globalization.CultureInfo.InvariantCulture)
                && f[5].EndsWith(":" + inode, StringComparison.Ordinal) && (fromByte is null || f[6] == fromByte));

    private static async Task FreezeUnless(LocalCluster cluster, LocalNode node, Func<int, bool> holds, string what)
    {
        var pid = node.Pid ?? throw new InvalidOperationException($"{node.Name} is not running.");
        for (var attempt = 1; attempt <= 200; attempt++)
        {
            await StopAllThreads(cluster, node, pid);
            if (!holds(pid))
            {
                return;
            }

            cluster.Thaw(node.Index);
            await Task.Delay(Random.Shared.Next(5, 40));
        }

        throw new TimeoutException($"{node.Name} (pid {pid}) held {what} at each of 200 SIGSTOPs.");
    }

    /// <summary>SIGSTOP, then waits until every thread of the process has stopped (a thread inside a system call stops as it returns).</summary>
    private static async Task StopAllThreads(LocalCluster cluster, LocalNode node, int pid)
    {
        cluster.Freeze(node.Index);
        var stopped = Stopwatch.StartNew();
        while (!AllThreadsStopped(pid))
        {
            if (stopped.Elapsed > TimeSpan.FromSeconds(5))
            {
                throw new TimeoutException($"{node.Name} (pid {pid}) did not stop within 5 s of SIGSTOP.");
            }

            await Task.Delay(1);
        }

        static bool AllThreadsStopped(int pid) =>
            Directory.EnumerateDirectories($"/proc/{pid}/task").All(task =>
            {
                try
                {
                    var stat = File.ReadAllText(Path.Combine(task, "stat"));
                    return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
                }
                catch (IOException)
                {
                    return true; // the thread ended
                }
            });

    }

    // "1: POSIX  ADVISORY  WRITE 28334 fe:00:11657486 120 120": kind, mode, type, owner pid, file (device and inode),
    // byte range. A waiter's line reads "1: -> FLOCK …" and does not count: it holds nothing.
    private static bool HoldsWriteLock(int pid, IReadOnlySet<string>? onInodes) =>
        File.ReadLines("/proc/locks").Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Any(f => f.Length > 5 && f[1] is "POSIX" or "FLOCK" && f[3] == "WRITE" && f[4] == pid.ToString(System.Globalization.CultureInfo.InvariantCulture)
                && (onInodes is null || onInodes.Contains(f[5][(f[5].LastIndexOf(':') + 1)..])));

    /// <summary>The inode numbers of those of the files that exist (stat(1): .NET does not expose them).</summary>
    private static HashSet<string> Inodes(params string[] files)
    {
        var existing = files.Where(File.Exists).ToList();
        if (existing.Count == 0)
        {
            return [];
        }

        using var stat = Process.Start(new ProcessStartInfo("stat", ["-L", "-c", "%i", .. existing]) { RedirectStandardOutput = true })!;
        var output = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }

    /// <summary>A barrier condition: the role's process has exited (it was downed and shut itself down).</summary>
    public static Task<bool> HasExited(LocalNode node, CancellationToken ct) => Task.FromResult(!node.IsRunning);

    /// <summary>What one node sees: members (by Akka port), those Up and reachable, and each partition's owner port.</summary>
    public static async Task<ClusterSnapshot> ViewOf(LocalNode node, CancellationToken ct = default)
    {
        using var doc = await node.Client.ClusterAsync(ct);
        var members = doc.RootElement.GetProperty("members").EnumerateArray().ToList();
        static int PortOf(string address) => int.Parse(address[(address.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        return new ClusterSnapshot(
            members.Select(m => PortOf(m.GetProperty("address").GetString()!)).Order().ToList(),
            members.Where(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean())
                .Select(m => PortOf(m.GetProperty("address").GetString()!)).Order().ToList(),
            members.Where(m => m.GetProperty("isOldest").GetBoolean()).Select(m => PortOf(m.GetProperty("address").GetString()!)).FirstOrDefault(),
            doc.RootElement.GetProperty("partitions").EnumerateArray()
                .Select(p => p.GetProperty("owner").GetString() is { } owner ? PortOf(owner) : (int?)null).ToList());
    }

    public void Kill(string role) => Cluster.Kill(this[role].Index);

    public void Freeze(string role) => Cluster.Freeze(this[role].Index);

    public void Thaw(string role) => Cluster.Thaw(this[role].Index);

    /// <summary>SIGTERM: the role's node hands its partitions off, leaves and exits.</summary>
    public Task Leave(string role) => Cluster.StopAsync(this[role].Index, TimeSpan.FromSeconds(60));

    /// <summary>Starts the role's node again on its ports (after a kill, a leave or being downed).</summary>
    public void Restart(string role) => Cluster.Start(this[role].Index);

    /// <summary>Cuts the link between two roles, both ways, while each still reaches every other node and the database.</summary>
    public Task Blackhole(string a, string b) => Cluster.BlackholeAsync(this[a].Index, this[b].Index);

    /// <summary>Cuts the link to <paramref name="peer"/> at <paramref name="at"/>'s end only, which works while the peer is down.</summary>
    public Task CutAt(string at, string peer) => Cluster.CutLinkAtAsync(this[at].Index, this[peer].Index);

    /// <summary>A network split: every link between the two sides is cut.</summary>
    public Task Split(IReadOnlyCollection<string> side, IReadOnlyCollection<string> otherSide) =>
        Cluster.SplitAsync(side.Select(r => this[r].Index).ToList(), otherSide.Select(r => this[r].Index).ToList());

    /// <summary>Restores every cut link.</summary>
    public Task Heal() => Cluster.HealAsync();

    public void DumpLogs()
    {
        foreach (var node in Cluster.Nodes)
        {
            _output.WriteLine($"---- {node.Name} = {RoleOf(node)} ({node.LogFile}) ----");
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

/// <summary>One node's view of the cluster: member ports, those Up and reachable, the oldest (coordinator host), partition owners.</summary>
public sealed record ClusterSnapshot(IReadOnlyList<int> All, IReadOnlyList<int> Up, int Oldest, IReadOnlyList<int?> Owners);
