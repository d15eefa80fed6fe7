using ActorHa.Cluster.Leases;
using ActorHa.Domain;

namespace ActorHa.Cluster;

/// <summary>Which database holds the journal, the snapshots and the cluster's metadata.</summary>
public enum StoreKind
{
    Sqlite,
    Postgres,
}

/// <summary>
/// Everything a node needs to join the cluster and serve its partitions. Bound from the "ActorHa"
/// configuration section (appsettings.json, ACTORHA__* environment variables, command-line flags);
/// README's configuration table documents every value.
/// </summary>
public sealed partial class ActorHaSettings
{
    public const string SectionName = "ActorHa";

    /// <summary>System name; every node of one cluster must use the same. ACTORHA__CLUSTERNAME.</summary>
    public string ClusterName { get; set; } = "actorha";

    /// <summary>URL the HTTP API listens on. ACTORHA__HTTPURL.</summary>
    public string HttpUrl { get; set; } = "http://127.0.0.1:8081";

    /// <summary>
    /// URL clients use to reach this node's HTTP API, published to the cluster so owner-routing clients can send a
    /// key straight to its partition's node. ACTORHA__ADVERTISEDHTTPURL. Default: <see cref="HttpUrl"/>, with a
    /// wildcard host (0.0.0.0, [::], +, *) replaced by <see cref="PublicHost"/> or <see cref="Host"/>.
    /// </summary>
    public string? AdvertisedHttpUrl { get; set; }

    /// <summary>Interface Akka remoting binds to. ACTORHA__HOST.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>Name other nodes use to reach this one (a container's service name). ACTORHA__PUBLICHOST.</summary>
    public string? PublicHost { get; set; }

    /// <summary>Akka remoting port. ACTORHA__PORT.</summary>
    public int Port { get; set; } = 4051;

    /// <summary>Seed node addresses "host:port"; empty = this node seeds itself. ACTORHA__SEEDS__0, __1 ….</summary>
    public List<string> Seeds { get; set; } = [];

    /// <summary>Members needed before the first ones move to Up, so partitions start spread over them. ACTORHA__MINMEMBERS.</summary>
    public int MinMembers { get; set; } = 1;

    /// <summary>Number of data partitions, fixed when the cluster is first created. ACTORHA__PARTITIONS.</summary>
    public int Partitions { get; set; } = PartitionMap.DefaultPartitionCount;

    /// <summary>sqlite or postgres. ACTORHA__STORE.</summary>
    public StoreKind Store { get; set; } = StoreKind.Sqlite;

    /// <summary>Connection string; for SQLite defaults to a file under DataDir. ACTORHA__CONNECTIONSTRING.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Directory of the SQLite database. ACTORHA__DATADIR.</summary>
    public string DataDir { get; set; } = "data";

    /// <summary>
    /// Diagnostics only, never for data you keep: each node's journal lives in its own memory instead of the store, so an
    /// acknowledged write is NOT durable and a partition that moves to another node loses its events since its last
    /// snapshot. `bench load --journal memory` sets it to measure what everything above the store costs (the ceiling any
    /// store could reach). The node logs a warning at startup. ACTORHA__UNSAFEMEMORYJOURNAL.
    /// </summary>
    public bool UnsafeMemoryJournal { get; set; }

    /// <summary>
    /// On SQLite, journal rows are written by <see cref="Persistence.JournalWriter"/> (one thread, one connection and
    /// one prepared statement per node) instead of Akka.Persistence.Sql's own write path, and snapshot saves by another
    /// (<see cref="Persistence.GroupCommitSnapshotStore"/>); the tables and everything that reads them stay
    /// Akka.Persistence.Sql's. False goes back to Akka.Persistence.Sql's writer and snapshot store (same rows, ~1.8x
    /// slower here: docs/performance.md). No effect on PostgreSQL. ACTORHA__SQLITEJOURNALWRITER.
    /// </summary>
    public bool SqliteJournalWriter { get; set; } = true;

    /// <summary>
    /// The same on PostgreSQL: journal rows written by <see cref="Persistence.JournalWriter"/> with one prepared statement
    /// per group of rows (<see cref="Persistence.PostgresJournalCommits"/>), and snapshot saves by another. False goes
    /// back to Akka.Persistence.Sql's writer and snapshot store (same rows, ~1.9x slower here: docs/performance.md).
    /// ACTORHA__POSTGRESJOURNALWRITER.
    /// </summary>
    public bool PostgresJournalWriter { get; set; } = true;

    /// <summary>A partition saves a snapshot after this many events. ACTORHA__SNAPSHOTEVERY.</summary>
    public int SnapshotEvery { get; set; } = 1000;

    /// <summary>How long a request waits for its partition before the API answers 503. ACTORHA__REQUESTTIMEOUT.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>One attempt's wait inside RequestTimeout; a lost message is retried after it. ACTORHA__ATTEMPTTIMEOUT.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The node lease that fences partition ownership (see docs/failover.md). ACTORHA__LEASE__*.</summary>
    public LeaseSettings Lease { get; set; } = new();

    /// <summary>Largest value accepted, in bytes. ACTORHA__MAXVALUEBYTES.</summary>
    public int MaxValueBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Bytes of values a node takes in at once (bodies of PUTs in progress, counted from their Content-Length, or
    /// MaxValueBytes when unknown); a PUT beyond it is answered 503 before its body is read. ACTORHA__MAXINFLIGHTWRITEBYTES.
    /// </summary>
    public long MaxInFlightWriteBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>
    /// Largest value sent between nodes over Akka remoting; a larger one, read or written, goes over HTTP to or from the
    /// owner's API (<see cref="PeerHttpUrl"/>), so that bulk data never queues in front of the failure detector's
    /// heartbeats. ACTORHA__REMOTEVALUELIMITBYTES.
    /// </summary>
    public int RemoteValueLimitBytes { get; set; } = 64 * 1024;

    /// <summary>Key listings a node runs at once (each asks every partition); one more is answered 503. ACTORHA__MAXCONCURRENTLISTS.</summary>
    public int MaxConcurrentLists { get; set; } = 16;

    /// <summary>Directory of the HOCON files (failure detector, SBR, sharding timings). ACTORHA__HOCONDIR.</summary>
    public string? HoconDir { get; set; }

    /// <summary>Optional HOCON profile from hocon/profiles/ laid over the defaults (e.g. akka-defaults). ACTORHA__AKKAPROFILE.</summary>
    public string? AkkaProfile { get; set; }

    /// <summary>
    /// Ends (SIGKILL) the process of a member the cluster downed while it was stopped (SIGSTOP, Ctrl+Z) on this host,
    /// once its node lease has expired: a stopped process can hold a shared SQLite file's write lock, and every node's
    /// writes would wait for it. On SQLite it also ends a member's process found stopped holding the lease file's write
    /// lock while this node's renewal waits for it, downed or not: every lease would lapse (Fencing/LockHolderWatch).
    /// Members on other hosts or in other containers are never touched (see Fencing/FenceWatch).
    /// ACTORHA__FENCEDOWNEDPROCESSES.
    /// </summary>
    public bool FenceDownedProcesses { get; set; } = true;

    /// <summary>
    /// Test clusters only: routes remoting through Akka.Remote's throttler adapter and exposes /v1/faults, so a
    /// harness can cut the network between two nodes. Off in production. ACTORHA__FAULTINJECTION.
    /// </summary>
    public bool FaultInjection { get; set; }

    /// <summary>Remoting protocol of every node address: the throttler adapter adds its scheme.</summary>
    public string RemotingProtocol => FaultInjection ? "akka.trttl.tcp" : "akka.tcp";

    public string EffectivePublicHost => string.IsNullOrWhiteSpace(PublicHost) ? Host : PublicHost;

    /// <summary>
    /// This node's HTTP API as the other nodes reach it: <see cref="HttpUrl"/> with a wildcard host replaced by
    /// <see cref="EffectivePublicHost"/>, the name they already use for remoting. Not <see cref="EffectiveAdvertisedHttpUrl"/>:
    /// that one is for clients, and behind published container ports it names the host's port, not the container's.
    /// </summary>
    public string PeerHttpUrl => WildcardHost().Replace(HttpUrl, m => m.Groups["scheme"].Value + EffectivePublicHost, 1).TrimEnd('/');

    public string EffectiveAdvertisedHttpUrl
    {
        get
        {
            if (!string.IsNullOrWhiteSpace(AdvertisedHttpUrl))
            {
                return AdvertisedHttpUrl.TrimEnd('/');
            }

            // Kestrel's wildcard hosts listen everywhere but are no address to give out.
            return PeerHttpUrl;
        }
    }

    /// <summary>
    /// How long a PostgreSQL session of this node may sit idle inside a transaction before the server ends it
    /// (rolling the transaction back). A node frozen (SIGSTOP, a stalled VM) between a journal INSERT and its
    /// COMMIT holds that row's unique-index entry: the partition's next owner, writing the same sequence number,
    /// waited until the frozen node resumed (10 s in `bench failover --fault sigstop --store postgres`). No
    /// healthy node leaves a transaction idle for this long: its own lease (valid 750 ms after a renewal) would
    /// have lapsed first.
    /// </summary>
    public static readonly TimeSpan PostgresIdleInTransactionTimeout = TimeSpan.FromSeconds(2);

    public string EffectiveConnectionString => Store switch
    {
        StoreKind.Postgres when !string.IsNullOrWhiteSpace(ConnectionString) => WithIdleInTransactionTimeout(ConnectionString),
        _ when !string.IsNullOrWhiteSpace(ConnectionString) => ConnectionString,
        StoreKind.Sqlite => $"Data Source={Path.GetFullPath(Path.Combine(DataDir, "actorha.db"))}",
        _ => throw new InvalidOperationException("ActorHa:ConnectionString is required for the postgres store."),
    };

    /// <summary>The connection string with <see cref="PostgresIdleInTransactionTimeout"/> among its session options, unless it sets its own.</summary>
    private static string WithIdleInTransactionTimeout(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (builder.Options?.Contains("idle_in_transaction_session_timeout", StringComparison.OrdinalIgnoreCase) != true)
        {
            builder.Options = $"{builder.Options} -c idle_in_transaction_session_timeout={(int)PostgresIdleInTransactionTimeout.TotalMilliseconds}".Trim();
        }

        return builder.ConnectionString;
    }

    /// <summary>Returns every problem with these settings, one sentence each; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        // Akka's own check comes only when the actor system starts, as a stack trace (ActorSystem name rule).
        if (!ActorSystemName().IsMatch(ClusterName ?? ""))
        {
            problems.Add($"ActorHa:ClusterName must be letters, digits, '-' and '_', not starting with '-' or '_', not '{ClusterName}'.");
        }

        // Akka remoting would refuse these only once the actor system starts, with a stack trace.
        if (!IsHostName(Host))
        {
            problems.Add($"ActorHa:Host must be a host name or an IP address, not '{Host}'.");
        }

        if (!string.IsNullOrWhiteSpace(PublicHost) && !IsHostName(PublicHost))
        {
            problems.Add($"ActorHa:PublicHost must be a host name or an IP address, not '{PublicHost}'.");
        }

        if (Port is < 0 or > 65535)
        {
            problems.Add($"ActorHa:Port must be between 0 and 65535, not {Port}.");
        }

        if (Partitions is < 1 or > PartitionMap.MaxPartitionCount)
        {
            problems.Add($"ActorHa:Partitions must be between 1 and {PartitionMap.MaxPartitionCount}, not {Partitions}.");
        }

        if (MinMembers < 1)
        {
            problems.Add($"ActorHa:MinMembers must be at least 1, not {MinMembers}.");
        }

        if (SnapshotEvery < 1)
        {
            problems.Add($"ActorHa:SnapshotEvery must be at least 1, not {SnapshotEvery}.");
        }

        problems.AddIfOutside("ActorHa:RequestTimeout", RequestTimeout, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(10));
        problems.AddIfOutside("ActorHa:AttemptTimeout", AttemptTimeout, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(10));
        problems.AddRange(Lease.Validate());

        if (MaxValueBytes < 1)
        {
            problems.Add("ActorHa:MaxValueBytes must be positive.");
        }

        if (RemoteValueLimitBytes < 0)
        {
            problems.Add($"ActorHa:RemoteValueLimitBytes must be 0 or more, not {RemoteValueLimitBytes}.");
        }

        if (MaxInFlightWriteBytes < MaxValueBytes)
        {
            problems.Add($"ActorHa:MaxInFlightWriteBytes ({MaxInFlightWriteBytes}) must be at least ActorHa:MaxValueBytes ({MaxValueBytes}), or no value that large could be written.");
        }

        if (MaxConcurrentLists is < 1 or > 100_000)
        {
            problems.Add($"ActorHa:MaxConcurrentLists must be between 1 and 100000, not {MaxConcurrentLists}.");
        }

        if (!Uri.TryCreate(HttpUrl, UriKind.Absolute, out var http) || (http.Scheme != Uri.UriSchemeHttp && http.Scheme != Uri.UriSchemeHttps))
        {
            problems.Add($"ActorHa:HttpUrl must be an absolute http:// or https:// URL, not '{HttpUrl}'.");
        }
        else if (http.AbsolutePath != "/" || http.Query.Length > 0 || http.Fragment.Length > 0)
        {
            // Kestrel refuses a path in the listen address only when it starts, with a stack trace.
            problems.Add($"ActorHa:HttpUrl must be scheme://host:port with no path, not '{HttpUrl}'.");
        }

        if (!string.IsNullOrWhiteSpace(AdvertisedHttpUrl)
            && (!Uri.TryCreate(AdvertisedHttpUrl, UriKind.Absolute, out var advertised) || (advertised.Scheme != Uri.UriSchemeHttp && advertised.Scheme != Uri.UriSchemeHttps)
                || AdvertisedHttpUrl.IndexOfAny(['"', '\\']) >= 0))
        {
            problems.Add($"ActorHa:AdvertisedHttpUrl must be an absolute http:// or https:// URL, not '{AdvertisedHttpUrl}'.");
        }

        if (Store == StoreKind.Postgres && string.IsNullOrWhiteSpace(ConnectionString))
        {
            problems.Add("ActorHa:ConnectionString is required when ActorHa:Store is postgres.");
        }

        if (ConnectionProblem() is { } connection)
        {
            problems.Add(connection);
        }

        if (HoconFiles.Problem(HoconDir, AkkaProfile) is { } hocon)
        {
            problems.Add(hocon);
        }

        foreach (var seed in Seeds)
        {
            if (!TryParseHostPort(seed, out _, out _))
            {
                problems.Add($"ActorHa:Seeds entry '{seed}' is not host:port.");
            }
        }

        return problems;
    }

    private static bool IsHostName(string? text) =>
        !string.IsNullOrWhiteSpace(text) && Uri.CheckHostName(text.Length > 2 && text[0] == '[' && text[^1] == ']' ? text[1..^1] : text) != UriHostNameType.Unknown;

    /// <summary>
    /// A connection string its driver cannot read (an unknown keyword, a value of the wrong kind), found before
    /// anything connects. Only the driver's message is shown: the string itself may hold a password.
    /// </summary>
    private string? ConnectionProblem()
    {
        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            return null;
        }

        try
        {
            _ = Store == StoreKind.Postgres
                ? new Npgsql.NpgsqlConnectionStringBuilder(ConnectionString).ConnectionString
                : new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(ConnectionString).ConnectionString;
            return null;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            return $"ActorHa:ConnectionString is not a valid {Store.ToString().ToLowerInvariant()} connection string: {e.Message.ReplaceLineEndings(" ")}";
        }
    }

    /// <summary>
    /// host:port, where host is a DNS name or an IP address (IPv6 as the part before the last colon, bracketed or
    /// not) and port is 1–65535 in plain digits. Anything else (spaces, control characters, "a:1:2") is refused,
    /// so a seed or a fault command names something remoting could actually address.
    /// </summary>
    public static bool TryParseHostPort(string text, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = text.LastIndexOf(':');
        if (colon <= 0
            || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            || port is < 1 or > 65535)
        {
            return false;
        }

        var name = text[..colon];
        var bare = name.Length > 2 && name[0] == '[' && name[^1] == ']' ? name[1..^1] : name;
        if (!IsHostName(name) || (bare.Contains(':') && Uri.CheckHostName(bare) != UriHostNameType.IPv6))
        {
            port = 0;
            return false;
        }

        host = name;
        return true;
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    private static partial System.Text.RegularExpressions.Regex ActorSystemName();

    [System.Text.RegularExpressions.GeneratedRegex(@"^(?<scheme>https?://)(0\.0\.0\.0|\[::\]|\+|\*)(?=[:/]|$)")]
    private static partial System.Text.RegularExpressions.Regex WildcardHost();
}

/// <summary>Range checks for TimeSpan settings, whose message shows the format .NET reads ("5" is five days).</summary>
public static class TimeSpanSettings
{
    public static void AddIfOutside(this List<string> problems, string name, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (Problem(name, value, min, max) is { } problem)
        {
            problems.Add(problem);
        }
    }

    public static string? Problem(string name, TimeSpan value, TimeSpan min, TimeSpan max) =>
        value < min || value > max ? $"{name} must be between {Format(min)} and {Format(max)} (hh:mm:ss[.fff]), not {Format(value)}." : null;

    /// <summary>As .NET reads it back: [d.]hh:mm:ss[.fffffff], trailing zeros of the fraction dropped.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.MinValue)
        {
            return value.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        }

        var d = value.Duration();
        var text = (value < TimeSpan.Zero ? "-" : "") + (d.Days > 0 ? $"{d.Days}." : "") + $"{d.Hours:00}:{d.Minutes:00}:{d.Seconds:00}";
        var fraction = d.Ticks % TimeSpan.TicksPerSecond;
        return fraction == 0 ? text : text + "." + fraction.ToString("0000000", System.Globalization.CultureInfo.InvariantCulture).TrimEnd('0');
    }
}
