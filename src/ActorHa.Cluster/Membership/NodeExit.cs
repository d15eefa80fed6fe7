using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Why this node's actor system ended, readable after the host (and its service provider) is gone: a node the
/// cluster downed exits with its own code, so a supervisor restarts it and an operator can tell it apart
/// from a requested stop.
/// </summary>
public sealed class NodeExit
{
    // Looked up once: ShuttingDown is read on every request (PartitionClient), and the extension lookup is a dictionary hit.
    private CoordinatedShutdown? _shutdown;

    /// <summary>True when the cluster downed this node (split-brain resolver, or removed while unreachable).</summary>
    public bool WasDowned => _shutdown?.ShutdownReason is CoordinatedShutdown.ClusterDowningReason;

    /// <summary>
    /// True once the actor system has begun to shut down, for whatever reason (downed, left, the host stopping): this
    /// node's partitions are moving away and its remoting is about to close, so a request that has not been sent
    /// anywhere yet should be answered at once and go to another node, not wait here for its timeout.
    /// </summary>
    public bool ShuttingDown => _shutdown?.ShutdownReason is not null;

    internal void Attach(ActorSystem system) => _shutdown = CoordinatedShutdown.Get(system);
}

public static class NodeExitSetup
{
    public static AkkaConfigurationBuilder WithNodeExit(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, _, resolver) => resolver.GetService<NodeExit>().Attach(system));
}
