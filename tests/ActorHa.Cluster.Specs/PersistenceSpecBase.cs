using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Persistence;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace ActorHa.Cluster.Specs;

/// <summary>
/// An ActorSystem configured by the same <see cref="PersistenceSetup.WithKvPersistence"/> the nodes use, on a
/// real SQLite file in a fresh directory, driven with Akka.TestKit.Xunit2.
/// </summary>
public abstract class PersistenceSpecBase : Akka.TestKit.Xunit2.TestKit
{
    protected PersistenceSpecBase(ITestOutputHelper output, string? connectionStringSuffix = null)
        : this(NewHost(connectionStringSuffix, out var settings), settings, output)
    {
    }

    private PersistenceSpecBase((IHost Host, ActorSystem System) started, ActorHaSettings settings, ITestOutputHelper output)
        : base(started.System, output)
    {
        SpecHost = started.Host;
        Settings = settings;
        Ownership = new SqliteOwnershipStore(settings.EffectiveConnectionString);
        Lease = NewLease("spec-node");
    }

    /// <summary>Partition ownership on the spec's SQLite file.</summary>
    protected IOwnershipStore Ownership { get; }

    /// <summary>This spec's node lease, renewed in the background like a node's.</summary>
    protected NodeLease Lease { get; }

    protected NodeLease NewLease(string nodeId, LeaseSettings? settings = null)
    {
        var lease = new NodeLease(Ownership, settings ?? new LeaseSettings(), Microsoft.Extensions.Logging.Abstractions.NullLogger<NodeLease>.Instance);
        lease.Start(nodeId);
        _leases.Add(lease);
        return lease;
    }

    private readonly List<NodeLease> _leases = [];

    protected IHost SpecHost { get; }

    protected ActorHaSettings Settings { get; }

    protected string DatabaseFile => new SqliteConnectionStringBuilder(Settings.EffectiveConnectionString).DataSource;

    protected long CountRows(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={DatabaseFile}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
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
        try
        {
            Directory.Delete(Settings.DataDir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }

    private static (IHost, ActorSystem) NewHost(string? connectionStringSuffix, out ActorHaSettings settings)
    {
        var dir = Path.Combine(Path.GetTempPath(), "actorha-specs", Guid.NewGuid().ToString("N"));
        var s = new ActorHaSettings { DataDir = dir };
        if (connectionStringSuffix is not null)
        {
            s.ConnectionString = s.EffectiveConnectionString + ";" + connectionStringSuffix;
        }

        ClusterMetadataStore.Prepare(s);
        settings = s;
        var host = new HostBuilder()
            .ConfigureServices(services => services.AddAkka("specs", (builder, _) =>
            {
                builder.AddHocon(Akka.TestKit.Configs.TestConfigs.DefaultConfig, HoconAddMode.Append);
                builder.WithKvPersistence(s);
            }))
            .Build();
        host.StartAsync().GetAwaiter().GetResult();
        return (host, host.Services.GetRequiredService<ActorSystem>());
    }
}
