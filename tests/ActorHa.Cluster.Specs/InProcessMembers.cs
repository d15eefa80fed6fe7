using Akka.Actor;
using Akka.Configuration;

namespace ActorHa.Cluster.Specs;

/// <summary>
/// Cluster members as actor systems inside the spec's process, with the shipped failure-detector and gossip timings
/// (hocon/actorha.conf) on a random port, for specs of what happens when one of them stops answering.
/// </summary>
internal static class InProcessMembers
{
    /// <summary>The timings, plus <paramref name="specific"/> (HOCON) inside <c>akka.cluster</c>.</summary>
    public static Config Config(string specific) => ConfigurationFactory.ParseString($$"""
        akka.loglevel = WARNING
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp.hostname = 127.0.0.1
        akka.remote.dot-netty.tcp.port = 0
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        # Terminating a member's system stops it without leaving, as a crashed or frozen process would.
        akka.coordinated-shutdown.run-by-actor-system-terminate = off
        akka.coordinated-shutdown.exit-clr = off
        akka.cluster {
          failure-detector {
            heartbeat-interval = 100ms
            acceptable-heartbeat-pause = 300ms
            min-std-deviation = 50ms
            expected-response-after = 300ms
          }
          gossip-interval = 100ms
          leader-actions-interval = 100ms
          unreachable-nodes-reaper-interval = 100ms
          periodic-tasks-initial-delay = 100ms
          down-removal-margin = 1ms
          {{specific}}
        }
        """);

    /// <summary>Joins <paramref name="system"/> to the cluster of <paramref name="seed"/> and waits until it is Up.</summary>
    public static async Task JoinAndWaitUp(ActorSystem system, Address seed)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        cluster.Join(seed);
        await up.Task.WaitAsync(TimeSpan.FromSeconds(15));
    }
}
