using System.Globalization;
using ActorHa.Client;
using ActorHa.Launcher;
using ActorHa.Node;
using Microsoft.AspNetCore.Builder;

namespace ActorHa.Api.Specs;

/// <summary>
/// One real node in this process: Kestrel on a free loopback port, a one-member Akka cluster, SQLite in a
/// temp directory. Specs talk to it over real HTTP with the same client the CLI uses.
/// </summary>
public abstract class NodeFixture : IAsyncLifetime
{
    public const int MaxValueBytes = 64 * 1024;

    private WebApplication? _app;

    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "actorha-api-specs", Guid.NewGuid().ToString("N"));

    public string Url { get; private set; } = "";

    public ActorHaClient Client { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The node's services, for arrangements HTTP cannot make deterministic.</summary>
    public IServiceProvider Services => _app!.Services;

    public async Task InitializeAsync()
    {
        var ports = Ports.FindFreeRange(2);
        Url = $"http://127.0.0.1:{ports}";
        var settings = new Dictionary<string, string?>
        {
            ["ActorHa:HttpUrl"] = Url,
            ["ActorHa:Port"] = (ports + 1).ToString(CultureInfo.InvariantCulture),
            ["ActorHa:DataDir"] = DataDir,
            ["ActorHa:MaxValueBytes"] = MaxValueBytes.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in StoreSettings())
        {
            settings[key] = value;
        }

        _app = NodeHost.Build([], settings);
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri(Url + "/"), Timeout = TimeSpan.FromSeconds(30) };
        Client = new ActorHaClient(Http);

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await Client.IsReadyAsync())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The in-process node did not become ready within 60 s.");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The store this node runs on, as ActorHa settings.</summary>
    protected abstract IReadOnlyDictionary<string, string?> StoreSettings();

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        Http.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp directory is harmless.
        }
    }
}

public sealed class SqliteNodeFixture : NodeFixture
{
    protected override IReadOnlyDictionary<string, string?> StoreSettings() => new Dictionary<string, string?>();
}

public sealed class PostgresNodeFixture : NodeFixture
{
    protected override IReadOnlyDictionary<string, string?> StoreSettings() => new Dictionary<string, string?>
    {
        ["ActorHa:Store"] = "postgres",
        ["ActorHa:ConnectionString"] = PostgresServer.Shared.CreateDatabase(),
    };
}

[CollectionDefinition(Name)]
public sealed class SqliteNodeCollection : ICollectionFixture<SqliteNodeFixture>
{
    public const string Name = "one node on SQLite";
}

[CollectionDefinition(Name)]
public sealed class PostgresNodeCollection : ICollectionFixture<PostgresNodeFixture>
{
    public const string Name = "one node on PostgreSQL";
}
