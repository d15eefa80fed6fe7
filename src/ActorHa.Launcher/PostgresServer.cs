using System.Diagnostics;
using Npgsql;

namespace ActorHa.Launcher;

/// <summary>
/// A real, throw-away PostgreSQL server for specs and benchmarks: Debian's PostgreSQL binaries, a fresh data
/// directory under /tmp, a free loopback port, trust authentication; one per process, a new database per
/// caller. Stopped when the process exits. Without the binaries it fails with a clear message
/// (.ci/run installs them; `apt-get install postgresql` elsewhere).
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private const string DataDirPrefix = "actorha-pg-";

    private const int StartAttempts = 3;

    private static readonly Lazy<PostgresServer> SharedServer = new(StartShared, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly Process _process;
    private readonly string _bin;
    private readonly bool _asRoot;
    private int _stopped;

    private PostgresServer(Process process, string bin, bool asRoot, string dataDir, int port)
    {
        _process = process;
        _bin = bin;
        _asRoot = asRoot;
        DataDir = dataDir;
        Port = port;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop();
    }

    /// <summary>One server per process, started on first use and removed (data directory included) at exit.</summary>
    public static PostgresServer Shared => SharedServer.Value;

    public int Port { get; }

    /// <summary>The server's throw-away data directory, under the temp directory.</summary>
    public string DataDir { get; }

    /// <summary>Stops the server and deletes its data directory.</summary>
    public void Dispose() => Stop();

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public string CreateDatabase()
    {
        var name = "specs_" + Guid.NewGuid().ToString("N");
        using (var connection = new NpgsqlConnection(ConnectionString("postgres")))
        {
            connection.Open();
            using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            create.ExecuteNonQuery();
        }

        return ConnectionString(name);
    }

    private string ConnectionString(string database) => ConnectionString(Port, database);

    private static string ConnectionString(int port, string database) =>
        $"Host=127.0.0.1;Port={port};Username=postgres;Database={database};Maximum Pool Size=20;Timeout=15";

    /// <summary>
    /// The shared server's start, tried afresh (new data directory, new port) after a failure: <see cref="Lazy{T}"/>
    /// remembers a failed start for the rest of the process, so one failed start fails every spec on PostgreSQL in that
    /// test run (a CI run lost the 40 of one project when a concurrent start deleted initdb's directory; see
    /// <see cref="RemoveStaleDataDirectories"/>).
    /// </summary>
    private static PostgresServer StartShared()
    {
        _ = BinDirectory(); // missing binaries are no transient failure: say so at once
        var failures = new List<Exception>();
        for (var attempt = 1; attempt <= StartAttempts; attempt++)
        {
            try
            {
                return StartNew();
            }
            catch (InvalidOperationException e)
            {
                failures.Add(e);
                Console.Error.WriteLine($"actorha: throw-away PostgreSQL failed to start (attempt {attempt} of {StartAttempts}): {e.Message}");
                Thread.Sleep(TimeSpan.FromSeconds(attempt));
            }
        }

        throw new AggregateException($"PostgreSQL did not start in {StartAttempts} attempts", failures);
    }

    /// <summary>A server of its own (most callers want <see cref="Shared"/>); dispose it to remove it.</summary>
    public static PostgresServer StartNew()
    {
        RemoveStaleDataDirectories();
        var bin = BinDirectory();
        var dataDir = Path.Combine(Path.GetTempPath(), DataDirPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            Run("chown", "-R", "postgres:postgres", dataDir);
        }

        try
        {
            Run(asRoot, Path.Combine(bin, "initdb"), "-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8");
        }
        catch (InvalidOperationException)
        {
            TryDelete(dataDir);
            throw;
        }

        // The port is free when picked but not reserved: another process can take it before the postmaster binds it,
        // and the postmaster then exits at once. Try another.
        for (var attempt = 1; ; attempt++)
        {
            // Below the ephemeral range, like every port our specs and benchmarks bind (see Ports).
            var port = Ports.FindFreeRange(1);
            // dynamic_shared_memory_type=mmap keeps the server's shared-memory segments in its data directory: the default
            // (posix) puts them in /dev/shm, where an immediate shutdown or a killed test host left them behind (found:
            // 331 segments, 1 MB each, from a day of test runs).
            var psi = Command(asRoot, Path.Combine(bin, "postgres"), "-D", dataDir, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "-k", dataDir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=500", "-c", "synchronous_commit=on",
                "-c", "dynamic_shared_memory_type=mmap");
            psi.RedirectStandardOutput = true;
            psi.RedirectStandardError = true;
            var process = Process.Start(psi)!;
            var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line && output.Count < 50)
                {
                    output.Enqueue(line);
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            // A start takes about a second here. The limit only decides when to give up on a slow machine, and giving
            // up fails every spec on PostgreSQL, so it is generous.
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (true)
            {
                try
                {
                    using var connection = new NpgsqlConnection(ConnectionString(port, "postgres"));
                    connection.Open();
                    return new PostgresServer(process, bin, asRoot, dataDir, port);
                }
                catch (NpgsqlException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                    Thread.Sleep(200);
                }
                catch (NpgsqlException) when (process.HasExited && attempt < 3)
                {
                    break;
                }
                catch (NpgsqlException e)
                {
                    // Not started, so nothing else removes what was made for it.
                    var why = process.HasExited ? $"the postmaster exited with code {process.ExitCode}" : "no connection within 120 s";
                    new PostgresServer(process, bin, asRoot, dataDir, port).Stop();
                    throw new InvalidOperationException($"PostgreSQL did not start on port {port} (attempt {attempt}): {why}: {string.Join(" | ", output)}", e);
                }
            }
        }
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        try
        {
            if (!_process.HasExited)
            {
                // An immediate shutdown through pg_ctl: the postmaster takes all its children down and pg_ctl waits
                // for it. Killing the process tree from outside raced with the postmaster starting a new child,
                // which outlived it and kept writing into the data directory, so the directory was never removed
                // (found: 112 leftover data directories, 7.2 GB, in /tmp after a day of test runs).
                try
                {
                    Run(_asRoot, Path.Combine(_bin, "pg_ctl"), "-D", DataDir, "-m", "immediate", "-w", "-t", "10", "stop");
                }
                catch (InvalidOperationException)
                {
                    // Not running any more, or pg_ctl failed: the kill below is the fallback.
                }

                if (!_process.WaitForExit(10_000))
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(10_000);
                }
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    Directory.Delete(DataDir, recursive: true);
                    return;
                }
                catch (IOException) when (attempt < 10)
                {
                    Thread.Sleep(200);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            // Best effort at exit.
        }
    }

    /// <summary>
    /// Deletes the data directories of earlier servers whose postmaster is gone. A process that ends without running
    /// its exit handlers (a test host the runner kills, `kill -9` of a benchmark) cannot remove its own; measured: a test
    /// run left one per test project behind, its server shut down but the directory still there. A directory whose
    /// postmaster still runs, or one whose server never started that is less than ten minutes old (another process may
    /// be running initdb in it), is left alone.
    /// </summary>
    public static void RemoveStaleDataDirectories()
    {
        foreach (var dir in Directory.EnumerateDirectories(Path.GetTempPath(), DataDirPrefix + "*"))
        {
            try
            {
                var pidFile = Path.Combine(dir, "postmaster.pid");
                if (File.Exists(pidFile))
                {
                    // A standalone backend (initdb's bootstrap and single-user runs) writes its PID negated. Reading
                    // only plain numbers took initdb's directory for a dead server's and deleted it under initdb: the
                    // shared server of a test run failed to start that way, and with it every spec on PostgreSQL.
                    var line = File.ReadLines(pidFile).FirstOrDefault();
                    if (!int.TryParse(line, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                        || pid == int.MinValue || Directory.Exists($"/proc/{Math.Abs(pid)}"))
                    {
                        // Alive, or a lock file being written: not ours to judge.
                        continue;
                    }
                }
                else if (!File.Exists(Path.Combine(dir, "postmaster.opts")) && DateTime.UtcNow - Directory.GetLastWriteTimeUtc(dir) < TimeSpan.FromMinutes(10))
                {
                    // Never started (a postmaster writes postmaster.opts when it starts, and leaves it when it stops):
                    // possibly initdb at work right now.
                    continue;
                }

                Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Someone else's, or in use: not ours to force.
            }
        }
    }

    private static string BinDirectory()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's postgresql package (apt-get install postgresql), as .ci/run does.");
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Removed later by RemoveStaleDataDirectories.
        }
    }

    private static ProcessStartInfo Command(bool asPostgres, string program, params string[] args)
    {
        var psi = asPostgres ? new ProcessStartInfo("runuser") : new ProcessStartInfo(program);
        if (asPostgres)
        {
            foreach (var a in new[] { "-u", "postgres", "--", program })
            {
                psi.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.UseShellExecute = false;
        return psi;
    }

    private static void Run(string program, params string[] args) => Run(false, program, args);

    private static void Run(bool asPostgres, string program, params string[] args)
    {
        var psi = Command(asPostgres, program, args);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {error.Result}{output.Result}");
        }
    }
}
