using ActorHa.Cluster.Fencing;
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
        services.AddSingleton(new UnrecoverablePartitions());
        services.AddSingleton(new LargeValueReplies(settings.PeerHttpUrl, settings.RemoteValueLimitBytes));
        services.AddSingleton<RemoteOwners>();
        services.AddSingleton<PartitionClient>();
        services.AddSingleton<ClusterView>();
        services.AddSingleton(settings.Lease);
        services.AddSingleton(LeaseSetup.CreateStore(settings));
        services.AddSingleton<PartitionClaims>();
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
                    Roles = [PartitionsSetup.Role, HttpAddresses.HoconRoleFor(settings), HttpAddresses.HoconPeerRoleFor(settings), .. ProcessIdentity.Current is { } self ? [self.HoconRole] : Array.Empty<string>()],
                    MinimumNumberOfMembers = settings.MinMembers,
                    // No SeedNodes: SeedJoin joins them, in an order that keeps a restarted first seed out of a
                    // cluster of its own while the store shows one running.
                })
                .WithSeedJoin([.. seeds.Select(s => $"{settings.RemotingProtocol}://{settings.ClusterName}@{s}")])
                .WithKvPersistence(settings)
                .WithPersistenceWarmup()
                .WithNodeLease()
                .WithPartitions(settings, map)
                .WithMembershipTracking(upSince, removals)
                .WithCrashDetector()
                .WithSplitBrainWatchdog()
                .WithResolverTicker()
                .WithDownedMemberFence(settings)
                .WithFileLockFence(settings)
                .WithNodeExit();
        });
    }
}

/// <summary>Finds the shipped HOCON files: an explicit directory, else hocon/ next to the program or above the working directory.</summary>
public static class HoconFiles
{
    public static IReadOnlyList<string> Find(string? directory, string? profile = null)
    {
        if (Problem(directory, profile) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        var dir = string.IsNullOrEmpty(directory) ? Candidates().FirstOrDefault(Directory.Exists) : directory;
        if (dir is null)
        {
            return [];
        }

        var files = Directory.GetFiles(dir, "*.conf").Order(StringComparer.Ordinal).ToList();
        if (!string.IsNullOrEmpty(profile))
        {
            files.Add(ProfileFile(dir, profile));
        }

        return files;
    }

    /// <summary>Why <see cref="Find"/> would fail for these settings, in one line naming the setting; null when it would not.</summary>
    public static string? Problem(string? directory, string? profile)
    {
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            return $"ActorHa:HoconDir must be an existing directory, not '{directory}' ({Path.GetFullPath(directory)} does not exist).";
        }

        if (string.IsNullOrEmpty(profile))
        {
            return null;
        }

        var dir = string.IsNullOrEmpty(directory) ? Candidates().FirstOrDefault(Directory.Exists) : directory;
        if (dir is null)
        {
            return $"ActorHa:AkkaProfile '{profile}' needs a hocon/ directory, and none was found (set ActorHa:HoconDir).";
        }

        var profiles = Directory.Exists(Path.Combine(dir, "profiles"))
            ? Directory.GetFiles(Path.Combine(dir, "profiles"), "*.conf").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];
        // Compared by name, so "../x" or an absolute path cannot reach a file outside profiles/.
        return profiles.Contains(profile, StringComparer.Ordinal)
            ? null
            : $"ActorHa:AkkaProfile must be one of the files of {Path.Combine(dir, "profiles")} ({(profiles.Count == 0 ? "none there" : string.Join(", ", profiles))}), not '{profile}'.";
    }

    private static string ProfileFile(string dir, string profile) => Path.Combine(dir, "profiles", profile + ".conf");

    private static IEnumerable<string> Candidates()
    {
        yield return Path.Combine(AppContext.BaseDirectory, "hocon");
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
        {
            yield return Path.Combine(d.FullName, "hocon");
        }
    }
}
