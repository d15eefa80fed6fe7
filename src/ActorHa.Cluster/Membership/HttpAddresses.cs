using Akka.Cluster;

namespace ActorHa.Cluster.Membership;

/// <summary>
/// Each member publishes where clients reach its HTTP API as a cluster role, <c>http=&lt;url&gt;</c>. Roles travel
/// with membership gossip, so every node can tell a client which URL serves which partition (/v1/cluster)
/// without a second registry that could disagree with membership.
/// </summary>
public static class HttpAddresses
{
    public const string RolePrefix = "http=";

    public static string RoleFor(ActorHaSettings settings) => RolePrefix + settings.EffectiveAdvertisedHttpUrl;

    /// <summary>
    /// The role as a quoted HOCON string: Akka.Cluster.Hosting joins roles into <c>roles = [a,b]</c> unquoted, and
    /// '=' and ':' end an unquoted HOCON value. (A URL has no '"' or '\'; settings validation refuses one that does.)
    /// </summary>
    public static string HoconRoleFor(ActorHaSettings settings) => "\"" + RoleFor(settings) + "\"";

    public static bool IsHttpRole(string role) => role.StartsWith(RolePrefix, StringComparison.Ordinal);

    /// <summary>
    /// The second role, <c>peer-http=&lt;url&gt;</c>: the member's HTTP API as the other nodes reach it
    /// (<see cref="ActorHaSettings.PeerHttpUrl"/>), where they relay values too large for remoting.
    /// </summary>
    public const string PeerRolePrefix = "peer-http=";

    public static string HoconPeerRoleFor(ActorHaSettings settings) => "\"" + PeerRolePrefix + settings.PeerHttpUrl + "\"";

    public static bool IsPeerRole(string role) => role.StartsWith(PeerRolePrefix, StringComparison.Ordinal);

    /// <summary>The member's HTTP API as this node reaches it; null for a member that does not publish one.</summary>
    public static string? PeerOf(Member member) => member.Roles.FirstOrDefault(IsPeerRole)?[PeerRolePrefix.Length..];

    /// <summary>The member's advertised HTTP URL; null for a member started without one.</summary>
    public static string? Of(Member member) => member.Roles.FirstOrDefault(IsHttpRole)?[RolePrefix.Length..];
}
