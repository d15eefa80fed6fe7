using ActorHa.Cluster.Forwarding;
using ActorHa.Cluster.Leases;
using ActorHa.Cluster.Membership;
using ActorHa.Cluster.Partitions;
using ActorHa.Cluster.Persistence;
using ActorHa.Cluster.Testing;
using ActorHa.Domain;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ActorHa.Cluster;

public static class AkkaSetup
{
    /// <summary>
    /// The whole ActorHa actor system as a list of features. Timings with no fluent option (failure
    /// detector, split-brain resolver, sharding) come from the HOCON files in hocon/, shared with the specs.
    /// </summary>
    public static IServiceCollection AddActorHaCluster(this IServiceCollection services, ActorHaSettings settings)
    {
        var map = new PartitionMap(settings.Partitions);
        var upSince = new UpSinceLog();
        var removals = new MemberRemovals();
        services.AddSingleton(settings);
        services.AddSingleton(map);
        services.AddSingleton(upSince);
        services.AddSingleton(removals);
        services.AddSingleton<NodeExit>();
        services.AddSingleton<LocalPartitions>();
        services.AddSingleton<RemoteOwners>();
        services.AddSingleton<PartitionClient>();
        services.AddSingleton<ClusterView>();
        services.AddSingleton(settings.Lease);
        services.AddSingleton(LeaseSetup.CreateStore(settings));
        services.AddSingleton<NodeLease>();
        services.AddSingleton<PersistenceWarmup>();
        services.AddNetworkFaults(settings);

        return services.AddAkka(settings.ClusterName, (builder, _) =>
        {
            // Each file prepended takes precedence over what came before: base files, then the profile.
            foreach (var file in HoconFiles.Find(settings.HoconDir, settings.AkkaProfile))
            {
                builder.AddHoconFile(file, HoconAddMode.Prepend);
            }

            if (settings.FaultInjection)
            {
                builder.AddHocon(NetworkFaults.Hocon, HoconAddMode.Prepend);
            }

            var selfSeed = $"{settings.EffectivePublicHost}:{settings.Port}";
            var seeds = settings.Seeds.Count > 0 ? settings.Seeds : [selfSeed];
            builder
                .ConfigureLoggers(loggers =>
                {
                    loggers.LogLevel = Akka.Event.LogLevel.InfoLevel;
                    loggers.ClearLoggers();
                    loggers.AddLoggerFactory();
                })
                .WithRemoting(new RemoteOptions
                {
                    HostName = settings.Host,
                    Port = settings.Port,
                    PublicHostName = settings.EffectivePublicHost,
                })
                .WithClustering(new ClusterOptions
                {
                    Roles = [PartitionsSetup.Role, HttpAddresses.HoconRoleFor(settings)],
                    MinimumNumberOfMembers = settings.MinMembers,
                    SeedNodes = seeds.Select(s => $"{settings.RemotingProtocol}://{settings.ClusterName}@{s}").ToArray(),
                })
                .WithKvPersistence(settings)
                .WithPersistenceWarmup()
                .WithNodeLease()
                .WithPartitions(settings, map)
                .WithMembershipTracking(upSince, removals)
                .WithCrashDetector()
                .WithNodeExit();
        });
    }
}

/// <summary>Finds the shipped HOCON files: an explicit directory, else hocon/ next to the program or above the working directory.</summary>
public static class HoconFiles
{
    public static IReadOnlyList<string> Find(string? directory, string? profile = null)
    {
        var dir = directory ?? Candidates().FirstOrDefault(Directory.Exists);
        if (dir is null)
        {
            return string.IsNullOrEmpty(profile) ? [] : throw new DirectoryNotFoundException($"No hocon/ directory found for the profile '{profile}'.");
        }

        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"The HOCON directory '{dir}' (ActorHa:HoconDir) does not exist.");
        }

        var files = Directory.GetFiles(dir, "*.conf").Order(StringComparer.Ordinal).ToList();
        if (!string.IsNullOrEmpty(profile))
        {
            var file = Path.Combine(dir, "profiles", profile + ".conf");
            files.Add(File.Exists(file) ? file : throw new FileNotFoundException($"The Akka profile '{profile}' (ActorHa:AkkaProfile) does not exist: {file}", file));
        }

        return files;
    }

    private static IEnumerable<string> Candidates()
    {
        yield return Path.Combine(AppContext.BaseDirectory, "hocon");
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
        {
            yield return Path.Combine(d.FullName, "hocon");
        }
    }
}
