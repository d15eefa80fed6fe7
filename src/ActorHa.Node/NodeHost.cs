using ActorHa.Api;
using ActorHa.Cluster;
using ActorHa.Cluster.Persistence;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ActorHa.Node;

/// <summary>A node's settings could not be used; the message says which value and why.</summary>
public sealed class NodeConfigurationException(string message) : Exception(message);

/// <summary>
/// One ActorHa node: the Akka cluster member hosting partitions, and the HTTP API in front of it.
/// Configuration comes from appsettings.json, then ACTORHA__* environment variables, then the given
/// overrides (command-line flags), later sources winning.
/// </summary>
public static class NodeHost
{
    public static ActorHaSettings ReadSettings(IConfiguration configuration)
    {
        ActorHaSettings settings;
        try
        {
            settings = configuration.GetSection(ActorHaSettings.SectionName).Get<ActorHaSettings>() ?? new ActorHaSettings();
        }
        catch (InvalidOperationException e)
        {
            // The binder names the key and the value it could not convert: that is the message the operator needs.
            throw new NodeConfigurationException(e.InnerException is null ? e.Message : $"{e.Message} {e.InnerException.Message}");
        }

        var problems = settings.Validate();
        return problems.Count == 0 ? settings : throw new NodeConfigurationException(string.Join(Environment.NewLine, problems));
    }

    public static WebApplication Build(string[] args, IDictionary<string, string?>? overrides = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (overrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(overrides);
        }

        var settings = ReadSettings(builder.Configuration);

        // SQLite's ADO.NET calls block the calling thread even through their async API. After a failover a
        // node recovers a dozen partitions at once; with the default minimum (one thread per core) the pool
        // grows only slowly and every recovery waits for a thread. Start with enough threads instead.
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
        RemotingPort.EnsureFree(settings.Host, settings.Port);
        var store = ClusterMetadataStore.Prepare(settings);

        builder.WebHost.UseUrls(settings.HttpUrl);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        // Per-request logs at Information would cost more than the request itself under load.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddSingleton(store);
        // On SIGTERM the HTTP server stops first, then Akka leaves (hocon/actorha.conf: run-by-clr-shutdown-hook). A
        // client still uploading must not hold that up for the default 30 s: an orchestrator's grace period (Docker's
        // is 10 s) would kill the node before it left, and its partitions would fail over instead of being handed over.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));
        builder.Services.AddActorHaProblems();
        builder.Services.AddSingleton<Admission>();
        builder.Services.AddSingleton<OwnerRelay>();
        builder.Services.AddActorHaCluster(settings);

        var app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = StatusCodeFor,
            // A body the client botched or abandoned is answered 4xx (or nothing, once it hung up): the client's fault,
            // not the node's, so no error line with a stack trace for operators to chase. A node's own fault (500) is logged.
            SuppressDiagnosticsCallback = context => StatusCodeFor(context.Exception) < StatusCodes.Status500InternalServerError,
        });
        app.UseStatusCodePages();
        // Routing after the exception handler, so even a routing failure is answered with problem+json.
        app.UseRouting();
        app.MapKvApi();
        app.MapClusterApi();
        app.MapFaultApi();

        app.Logger.LogInformation("ActorHa node {Host}:{Port} (HTTP {Http}), {Partitions} partitions, store {Store} at {Location} ({Durability})",
            settings.EffectivePublicHost, settings.Port, settings.HttpUrl, store.PartitionCount, store.Kind, store.Location, store.Durability);
        if (store.DurabilityWarning is { } warning)
        {
            app.Logger.LogWarning("Store {Store} at {Location}: {Warning}", store.Kind, store.Location, warning);
        }

        return app;
    }

    // A request that fails outside the partition protocol (a client that hangs up, a body that cannot be read)
    // is the client's problem, not a 500; anything else is a bug and stays a 500 without a stack trace.
    private static int StatusCodeFor(Exception exception) => exception switch
    {
        BadHttpRequestException bad => bad.StatusCode,
        OperationCanceledException => StatusCodes.Status499ClientClosedRequest,
        _ => StatusCodes.Status500InternalServerError,
    };
}
