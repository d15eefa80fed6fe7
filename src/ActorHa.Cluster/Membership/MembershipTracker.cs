using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;

namespace ActorHa.Cluster.Membership;

/// <summary>When this node first saw each member Up (Akka's Member carries no timestamp). Shared with readers.</summary>
public sealed class UpSinceLog
{
    private readonly ConcurrentDictionary<UniqueAddress, DateTimeOffset> _upSince = new();

    public DateTimeOffset? For(UniqueAddress member) => _upSince.TryGetValue(member, out var at) ? at : null;

    internal void Seen(UniqueAddress member, DateTimeOffset at) => _upSince.TryAdd(member, at);

    internal void Forget(UniqueAddress member) => _upSince.TryRemove(member, out _);
}

/// <summary>Feeds <see cref="UpSinceLog"/> and <see cref="MemberRemovals"/> from cluster membership events.</summary>
public sealed class MembershipTracker : ReceiveActor
{
    public MembershipTracker(UpSinceLog log, MemberRemovals removals)
    {
        Receive<ClusterEvent.MemberUp>(up => log.Seen(up.Member.UniqueAddress, DateTimeOffset.UtcNow));
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            log.Forget(removed.Member.UniqueAddress);
            removals.Signal();
        });
    }

    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));

    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
}

public static class MembershipSetup
{
    public static AkkaConfigurationBuilder WithMembershipTracking(this AkkaConfigurationBuilder builder, UpSinceLog log, MemberRemovals removals) =>
        builder.WithActors((system, _) => system.ActorOf(Props.Create(() => new MembershipTracker(log, removals)), "membership-tracker"));
}
