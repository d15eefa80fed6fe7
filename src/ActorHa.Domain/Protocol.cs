namespace ActorHa.Domain;

/// <summary>Anything a partition accepts; routed by <see cref="IKeyed.Key"/> or by an explicit partition.</summary>
public interface IPartitionMessage;

/// <summary>A message addressed to the partition that owns its key.</summary>
public interface IKeyed : IPartitionMessage
{
    string Key { get; }
}

/// <summary>Changes a key: decided against the state, persisted, then acknowledged.</summary>
public interface IWriteCommand : IKeyed
{
    /// <summary>Identifies one client request across retries: a partition applies a request id at most once.</summary>
    Guid? RequestId { get; }
}

public interface IPartitionEvent
{
    string Key { get; }

    long Version { get; }

    /// <summary>The request that caused the event, so a retried request is answered, not applied again.</summary>
    Guid? RequestId { get; }
}

public interface IPartitionReply;

public static class Commands
{
    /// <summary>Write a value. ExpectedVersion: null = unconditional, 0 = create only, n = compare-and-set.</summary>
    public sealed record Put(string Key, byte[] Value, long? ExpectedVersion = null, Guid? RequestId = null) : IWriteCommand;

    /// <summary>Delete a key (leaves a tombstone). ExpectedVersion: null = unconditional, n = compare-and-delete.</summary>
    public sealed record Delete(string Key, long? ExpectedVersion = null, Guid? RequestId = null) : IWriteCommand;
}

public static class Queries
{
    public sealed record Get(string Key) : IKeyed;

    /// <summary>
    /// Which node's API serves the key's partition: asked, a few bytes, before a value too large for the cluster's
    /// remoting connection is sent to an owner this node has not heard from yet (it just started, or just moved).
    /// </summary>
    public sealed record Locate(string Key) : IKeyed;

    /// <summary>Live keys of one partition starting with Prefix, ordinal order, strictly after After.</summary>
    public sealed record ListKeys(PartitionId Partition, string Prefix, string? After, int Limit) : IPartitionMessage;
}

public static class Events
{
    public sealed record ValueWritten(string Key, byte[] Value, long Version, DateTimeOffset At, Guid? RequestId = null) : IPartitionEvent;

    public sealed record ValueDeleted(string Key, long Version, DateTimeOffset At, Guid? RequestId = null) : IPartitionEvent;

    /// <summary>
    /// A write with a request id was refused: a compare-and-set whose version did not match (ExpectedVersion set),
    /// or a delete of an absent key (ExpectedVersion null). The key does not change (Version is its live version,
    /// 0 when absent); the refusal is recorded only so that another copy of the same request, arriving later,
    /// perhaps after the key has reached the expected version, gets the same refusal instead of being applied.
    /// Fingerprint is the refused request's <see cref="RequestFingerprint"/> (its value is not stored), so that the
    /// same id sent later with another request is told so; 0 in refusals recorded before it was kept.
    /// </summary>
    public sealed record WriteRefused(string Key, long Version, long? ExpectedVersion, DateTimeOffset At, Guid? RequestId, ulong Fingerprint = 0) : IPartitionEvent
    {
        public IPartitionReply Reply => ExpectedVersion is { } expected ? new Replies.VersionMismatch(Key, expected, Version) : new Replies.NotFound(Key);
    }
}

public static class Replies
{
    public sealed record Written(string Key, long Version, bool Created) : IPartitionReply;

    public sealed record Deleted(string Key, long Version) : IPartitionReply;

    public sealed record Found(string Key, byte[] Value, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt) : IPartitionReply;

    public sealed record NotFound(string Key) : IPartitionReply;

    /// <summary>A conditional write did not match. CurrentVersion is 0 when the key is absent or deleted.</summary>
    public sealed record VersionMismatch(string Key, long ExpectedVersion, long CurrentVersion) : IPartitionReply;

    public sealed record InvalidKey(string Key, string Reason) : IPartitionReply;

    /// <summary>The write's request id (Idempotency-Key) was already used for a different request; nothing was applied.</summary>
    public sealed record IdempotencyConflict(string Key, string Reason) : IPartitionReply;

    public sealed record KeyPage(PartitionId Partition, IReadOnlyList<KeyVersion> Keys) : IPartitionReply;

    /// <summary>The partition could not answer (restarting, moving, journal down). Safe to retry after RetryAfter.</summary>
    public sealed record Unavailable(string Reason, TimeSpan RetryAfter) : IPartitionReply;

    /// <summary>
    /// The partition cannot be rebuilt from the store: an event or snapshot it must replay cannot be read (damaged
    /// pages or bytes, or written by a newer version). Nothing was read or written. Retrying at once cannot help; the
    /// node tries the recovery again after RetryAfter, and restoring the store from a backup is what fixes damage.
    /// </summary>
    public sealed record Unrecoverable(PartitionId Partition, string Reason, TimeSpan RetryAfter) : IPartitionReply;

    /// <summary>
    /// The key has a value too large to send back over the cluster's remoting connection, which also carries the
    /// failure detector's heartbeats: the node that asked fetches it over HTTP from OwnerUrl (the owner's own API)
    /// instead. Version is the version found; a fetch may find a newer one, never an older one.
    /// </summary>
    public sealed record FetchFromOwner(string Key, long Version, int Length, string OwnerUrl) : IPartitionReply;

    /// <summary>The answer to <see cref="Queries.Locate"/>: the owner's API as other nodes reach it; null when it has none to offer.</summary>
    public sealed record Located(string Key, string? OwnerUrl) : IPartitionReply;
}

public readonly record struct KeyVersion(string Key, long Version);
