using System.Collections.Immutable;

namespace ActorHa.Domain;

/// <summary>One key's latest state. A deleted key stays as a tombstone so its version keeps growing.</summary>
public sealed record Entry(byte[] Value, long Version, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt, bool Deleted)
{
    public bool IsLive => !Deleted;
}

/// <summary>The outcome of deciding a command: at most one event to persist, and the reply to send once it is durable.</summary>
public readonly record struct Decision(IPartitionEvent? Event, IPartitionReply Reply);

/// <summary>
/// A partition's keys. Pure and immutable: <see cref="Decide"/> never changes state, <see cref="Apply"/>
/// returns a new state, so the actor can decide a batch of commands against a tentative state and only
/// make it visible once the batch is durable.
/// </summary>
public sealed class PartitionState
{
    /// <summary>How many recent request ids a partition remembers to answer retries (well beyond any retry window).</summary>
    public const int RememberedRequests = 10_000;

    public static readonly PartitionState Empty = new(ImmutableSortedDictionary.Create<string, Entry>(StringComparer.Ordinal), RecentRequests.Empty);

    private PartitionState(ImmutableSortedDictionary<string, Entry> entries, RecentRequests recent)
    {
        Entries = entries;
        Recent = recent;
    }

    /// <summary>Every key ever written, tombstones included, in ordinal key order.</summary>
    public ImmutableSortedDictionary<string, Entry> Entries { get; }

    /// <summary>The replies of the most recent requests, oldest first, for answering retries.</summary>
    public RecentRequests Recent { get; }

    public int LiveCount => Entries.Count(e => e.Value.IsLive);

    public static PartitionState FromEntries(IEnumerable<KeyValuePair<string, Entry>> entries, IEnumerable<(Guid RequestId, IPartitionReply Reply)>? recent = null) =>
        new(ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, entries), RecentRequests.From(recent ?? []));

    public static PartitionState FromEntries(IEnumerable<KeyValuePair<string, Entry>> entries, IEnumerable<(Guid RequestId, RememberedRequest Request)> recent) =>
        new(ImmutableSortedDictionary.CreateRange(StringComparer.Ordinal, entries), RecentRequests.From(recent));

    public Entry? Find(string key) => Entries.TryGetValue(key, out var entry) ? entry : null;

    public Decision Decide(IWriteCommand command, DateTimeOffset now) => command switch
    {
        // A retry of a request already applied gets the original answer and changes nothing; the same id sent
        // with a different request is refused, never answered with the first one's outcome.
        { RequestId: { } id } when Recent.Lookup(id) is { } earlier => new Decision(null, IsSameRequest(earlier, command)
            ? earlier.Reply
            : new Replies.IdempotencyConflict(command.Key, $"request id {id} was already used for a different request")),
        Commands.Put put => DecidePut(put, now),
        Commands.Delete delete => DecideDelete(delete, now),
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "Unknown write command."),
    };

    public IPartitionReply Answer(Queries.Get get)
    {
        var entry = Find(get.Key);
        return entry is { IsLive: true }
            ? new Replies.Found(get.Key, entry.Value, entry.Version, entry.CreatedAt, entry.UpdatedAt)
            : new Replies.NotFound(get.Key);
    }

    public Replies.KeyPage Answer(Queries.ListKeys list)
    {
        var page = new List<KeyVersion>(Math.Min(list.Limit, 1024));
        // Ordinal order puts every key with the prefix in one contiguous run; skip to it, stop after it.
        foreach (var (key, entry) in Entries)
        {
            if (page.Count >= list.Limit)
            {
                break;
            }

            var afterCursor = list.After is null || string.CompareOrdinal(key, list.After) > 0;
            if (!afterCursor || !entry.IsLive)
            {
                continue;
            }

            if (key.StartsWith(list.Prefix, StringComparison.Ordinal))
            {
                page.Add(new KeyVersion(key, entry.Version));
            }
            else if (string.CompareOrdinal(key, list.Prefix) > 0)
            {
                break;
            }
        }

        return new Replies.KeyPage(list.Partition, page);
    }

    public PartitionState Apply(IPartitionEvent @event)
    {
        if (@event is Events.WriteRefused refused)
        {
            // Refusals recorded before their events kept a fingerprint: only a refused delete of an absent key is fully
            // known from the event itself.
            var refusedFingerprint = refused.Fingerprint != 0 ? refused.Fingerprint
                : refused.ExpectedVersion is null ? RequestFingerprint.OfDelete(refused.Key) : 0;
            return refused.RequestId is { } refusedId ? new PartitionState(Entries, Recent.Add(refusedId, refused.Reply, RememberedRequests, refusedFingerprint)) : this;
        }

        var current = Find(@event.Key);
        var (entry, reply, fingerprint) = @event switch
        {
            Events.ValueWritten w => (Written(current, w), (IPartitionReply)new Replies.Written(w.Key, w.Version, Created: current is not { IsLive: true }), RequestFingerprint.OfPut(w.Key, w.Value)),
            Events.ValueDeleted d => (Deleted(current, d), new Replies.Deleted(d.Key, d.Version), RequestFingerprint.OfDelete(d.Key)),
            _ => throw new ArgumentOutOfRangeException(nameof(@event), @event, "Unknown event."),
        };
        var recent = @event.RequestId is { } id ? Recent.Add(id, reply, RememberedRequests, fingerprint) : Recent;
        return new PartitionState(Entries.SetItem(@event.Key, entry), recent);
    }

    /// <summary>
    /// Whether <paramref name="command"/> is a copy of the request remembered as <paramref name="earlier"/>: same
    /// kind, key and precondition as far as the reply tells, and the same fingerprint where one is known.
    /// </summary>
    private static bool IsSameRequest(RememberedRequest earlier, IWriteCommand command)
    {
        var (fingerprint, expected) = command switch
        {
            Commands.Put put => (RequestFingerprint.OfPut(put.Key, put.Value), put.ExpectedVersion),
            Commands.Delete delete => (RequestFingerprint.OfDelete(delete.Key), delete.ExpectedVersion),
            _ => (0UL, null),
        };
        var sameKind = (earlier.Reply, command) switch
        {
            (Replies.Written w, Commands.Put) => w.Key == command.Key,
            (Replies.Deleted d, Commands.Delete) => d.Key == command.Key,
            (Replies.VersionMismatch m, _) => m.Key == command.Key && m.ExpectedVersion == expected,
            (Replies.NotFound n, Commands.Delete { ExpectedVersion: null }) => n.Key == command.Key,
            _ => false,
        };
        return sameKind && (earlier.Fingerprint == 0 || earlier.Fingerprint == fingerprint);
    }

    /// <summary>
    /// A refusal that depends on the state (the key's version) is recorded when the request has an id: two copies
    /// of one request can race (a client's retry through another node, and the original still buffered while its
    /// partition moved), and the later copy must get the refusal too, not be applied because the key has moved on.
    /// </summary>
    private static Decision Refuse(string key, long liveVersion, long? expected, Guid? requestId, DateTimeOffset now, Func<ulong> fingerprint)
    {
        var refused = new Events.WriteRefused(key, liveVersion, expected, now, requestId, requestId is null ? 0 : fingerprint());
        return new Decision(requestId is null ? null : refused, refused.Reply);
    }

    private Decision DecidePut(Commands.Put put, DateTimeOffset now)
    {
        var current = Find(put.Key);
        var liveVersion = current is { IsLive: true } ? current.Version : 0;
        if (put.ExpectedVersion is { } expected && expected != liveVersion)
        {
            return Refuse(put.Key, liveVersion, expected, put.RequestId, now, () => RequestFingerprint.OfPut(put.Key, put.Value));
        }

        // Versions continue past a tombstone: a re-created key never reuses a version a reader may have seen.
        var version = (current?.Version ?? 0) + 1;
        return new Decision(
            new Events.ValueWritten(put.Key, put.Value, version, now, put.RequestId),
            new Replies.Written(put.Key, version, Created: liveVersion == 0));
    }

    private Decision DecideDelete(Commands.Delete delete, DateTimeOffset now)
    {
        var current = Find(delete.Key);
        var liveVersion = current is { IsLive: true } ? current.Version : 0;
        if (delete.ExpectedVersion is { } expected && expected != liveVersion)
        {
            return Refuse(delete.Key, liveVersion, expected, delete.RequestId, now, () => RequestFingerprint.OfDelete(delete.Key));
        }

        if (liveVersion == 0)
        {
            return Refuse(delete.Key, 0, null, delete.RequestId, now, () => RequestFingerprint.OfDelete(delete.Key));
        }

        var version = current!.Version + 1;
        return new Decision(new Events.ValueDeleted(delete.Key, version, now, delete.RequestId), new Replies.Deleted(delete.Key, version));
    }

    private static Entry Written(Entry? current, Events.ValueWritten e) =>
        current is { IsLive: true }
            ? current with { Value = e.Value, Version = e.Version, UpdatedAt = e.At }
            : new Entry(e.Value, e.Version, e.At, e.At, Deleted: false);

    private static Entry Deleted(Entry? current, Events.ValueDeleted e) =>
        new(Array.Empty<byte>(), e.Version, current?.CreatedAt ?? e.At, e.At, Deleted: true);
}
