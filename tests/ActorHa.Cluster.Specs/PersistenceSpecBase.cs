using System.Data.Common;
using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using ActorHa.Launcher;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs;

/// <summary>
/// An ActorSystem configured by the same <see cref="PersistenceSetup.WithKvPersistence"/> the nodes use, on a
/// real store — a SQLite file in a fresh directory, or a fresh database on a real PostgreSQL server — driven
/// with Akka.TestKit.Xunit2. Suites derive once per store.
/// </summary>
public abstract class PersistenceSpecBase : Akka.TestKit.Xunit2.TestKit
{
    private readonly List<NodeLease> _leases = [];

    protected PersistenceSpecBase(ITestOutputHelper output, StoreKind store = StoreKind.Sqlite)
        : this(NewHost(store, out var settings), settings, output)
    {
    }

    private PersistenceSpecBase((IHost Host, ActorSystem System) started, ActorHaSettings settings, ITestOutputHelper output)
        : base(started.System, output)
    {
        SpecHost = started.Host;
        Settings = settings;
        Ownership = LeaseSetup.CreateStore(settings);
        Claims = new PartitionClaims(Ownership);
        Lease = NewLease("spec-node");
    }

    protected IHost SpecHost { get; }

    protected ActorHaSettings Settings { get; }

    /// <summary>Partition ownership in the spec's store.</summary>
    protected IOwnershipStore Ownership { get; }

    /// <summary>This spec's node's side of partition ownership, shared by every supervisor it starts, as on a node.</summary>
    protected PartitionClaims Claims { get; }

    /// <summary>This spec's node lease, renewed in the background like a node's.</summary>
    protected NodeLease Lease { get; }

    protected string SnapshotTable => Settings.Store == StoreKind.Sqlite ? "snapshot" : "snapshot_store";

    protected NodeLease NewLease(string nodeId, LeaseSettings? settings = null)
    {
        var lease = new NodeLease(Ownership, settings ?? new LeaseSettings(), Microsoft.Extensions.Logging.Abstractions.NullLogger<NodeLease>.Instance);
        lease.Start(nodeId);
        _leases.Add(lease);
        return lease;
    }

    protected DbConnection OpenConnection()
    {
        DbConnection connection = Settings.Store == StoreKind.Sqlite
            ? new SqliteConnection(Settings.EffectiveConnectionString)
            : new NpgsqlConnection(Settings.EffectiveConnectionString);
        connection.Open();
        return connection;
    }

    protected long CountRows(string sql)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    protected void ExecuteSql(string sql)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>
    /// Another client holds the journal's write lock until disposed, so journal writes stall and fail:
    /// SQLite's database lock (BEGIN EXCLUSIVE), PostgreSQL's table lock on the journal (or on <paramref name="postgresTable"/>).
    /// </summary>
    protected IDisposable HoldJournalWriteLock(string postgresTable = "event_journal")
    {
        var connection = Settings.Store == StoreKind.Sqlite
            ? (DbConnection)new SqliteConnection(Settings.EffectiveConnectionString + ";Default Timeout=1")
            // Another client, not an ActorHa node: without the idle-in-transaction timeout nodes' sessions carry.
            : new NpgsqlConnection(Settings.ConnectionString);
        connection.Open();
        using var begin = connection.CreateCommand();
        begin.CommandText = Settings.Store == StoreKind.Sqlite ? "BEGIN EXCLUSIVE;" : $"BEGIN; LOCK TABLE {postgresTable} IN EXCLUSIVE MODE;";
        begin.ExecuteNonQuery();
        return new Release(connection);
    }

    protected override void AfterAll()
    {
        foreach (var lease in _leases)
        {
            lease.Dispose();
        }

        base.AfterAll();
        SpecHost.StopAsync().GetAwaiter().GetResult();
        SpecHost.Dispose();
        SqliteConnection.ClearAllPools();
        NpgsqlConnection.ClearAllPools();
        if (Settings.Store == StoreKind.Sqlite)
        {
            try
            {
                Directory.Delete(Settings.DataDir, recursive: true);
            }
            catch (IOException)
            {
                // A leftover temp directory is harmless.
            }
        }
    }

    private static (IHost, ActorSystem) NewHost(StoreKind store, out ActorHaSettings settings)
    {
        var s = store == StoreKind.Sqlite
            ? new ActorHaSettings { DataDir = Path.Combine(Path.GetTempPath(), "actorha-specs", Guid.NewGuid().ToString("N")) }
            : new ActorHaSettings { Store = StoreKind.Postgres, ConnectionString = PostgresServer.Shared.CreateDatabase() };
        ClusterMetadataStore.Prepare(s);
        settings = s;
        return StartHost(s);
    }

    /// <summary>A host configured as a node configures its ActorSystem (the spec's own, or a second one on the same store).</summary>
    protected static (IHost Host, ActorSystem System) StartHost(ActorHaSettings s)
    {
        var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("specs", (builder, _) =>
            {
                builder.AddHocon(Akka.TestKit.Configs.TestConfigs.DefaultConfig, HoconAddMode.Append);
                foreach (var file in HoconFiles.Find(null))
                {
                    builder.AddHoconFile(file, HoconAddMode.Prepend);
                }

                builder.WithKvPersistence(s);
            }))
            .Build();
        host.StartAsync().GetAwaiter().GetResult();
        return (host, host.Services.GetRequiredService<ActorSystem>());
    }

    private sealed class Release(DbConnection connection) : IDisposable
    {
        public void Dispose()
        {
            using (var rollback = connection.CreateCommand())
            {
                rollback.CommandText = "ROLLBACK;";
                rollback.ExecuteNonQuery();
            }

            connection.Dispose();
        }
    }
}
