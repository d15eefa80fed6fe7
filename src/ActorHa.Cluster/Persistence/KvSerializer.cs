using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using ActorHa.Cluster.Forwarding;
using ActorHa.Domain;
using Akka.Actor;
using Akka.Serialization;

namespace ActorHa.Cluster.Persistence;

/// <summary>
/// Binary serializer for everything ActorHa stores or sends between nodes. Manifests are short,
/// explicit and never derived from CLR type names: the journal outlives the code, so a manifest,
/// once written, must be readable forever. Add a new manifest (".v2") rather than change a layout.
/// </summary>
public sealed class KvSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    public const int Id = 4701;

    // Persisted: never change their meaning. v1 is still read; v2 adds the request id (and, in snapshots,
    // the remembered requests); snapshot v3 also remembers refusals, v4 each remembered request's fingerprint;
    // refused v2 adds the refused request's fingerprint; snapshot v5 stores the remembered requests compactly
    // (WriteSnapshot).
    // The last of each is what this version writes.
    public const string WrittenManifestV1 = "kv.written.v1";
    public const string DeletedManifestV1 = "kv.deleted.v1";
    public const string SnapshotManifestV1 = "kv.snapshot.v1";
    public const string SnapshotManifestV2 = "kv.snapshot.v2";
    public const string WrittenManifest = "kv.written.v2";
    public const string DeletedManifest = "kv.deleted.v2";
    public const string RefusedManifestV1 = "kv.refused.v1";
    public const string RefusedManifest = "kv.refused.v2";
    public const string SnapshotManifestV3 = "kv.snapshot.v3";
    public const string SnapshotManifestV4 = "kv.snapshot.v4";
    public const string SnapshotManifest = "kv.snapshot.v5";

    // Wire only: must match across the nodes of one cluster (rolling upgrades keep them stable too).
    private const string PutManifest = "cmd.put";
    private const string DeleteManifest = "cmd.delete";
    private const string GetManifest = "q.get";
    private const string ListManifest = "q.list";
    private const string WrittenReply = "r.written";
    private const string DeletedReply = "r.deleted";
    private const string FoundReply = "r.found";
    private const string NotFoundReply = "r.notfound";
    private const string MismatchReply = "r.mismatch";
    private const string InvalidKeyReply = "r.invalidkey";
    private const string PageReply = "r.page";
    private const string UnavailableReply = "r.unavailable";
    private const string IdempotencyConflictReply = "r.idconflict";
    private const string ForwardBatchManifest = "fwd.batch";
    private const string ReplyBatchManifest = "fwd.replies";
    private const string PartitionsHereManifest = "fwd.here";
    private const string UnrecoverableReply = "r.unrecoverable";
    private const string UnrecoverableHereManifest = "fwd.unrecoverable";
    private const string FetchFromOwnerReply = "r.fetch";
    private const string LocateManifest = "q.locate";
    private const string LocatedReply = "r.located";

    /// <summary>What a forwarded batch may carry: requests and replies, nothing that nests.</summary>
    private static readonly HashSet<string> ItemManifests =
    [
        PutManifest, DeleteManifest, GetManifest, ListManifest, WrittenReply, DeletedReply, FoundReply, NotFoundReply,
        MismatchReply, InvalidKeyReply, PageReply, UnavailableReply, IdempotencyConflictReply, UnrecoverableReply, FetchFromOwnerReply,
        LocateManifest, LocatedReply,
    ];

    public static readonly IReadOnlyList<Type> BoundTypes =
    [
        typeof(Events.ValueWritten), typeof(Events.ValueDeleted), typeof(Events.WriteRefused), typeof(PartitionState),
        typeof(Commands.Put), typeof(Commands.Delete), typeof(Queries.Get), typeof(Queries.ListKeys),
        typeof(Replies.Written), typeof(Replies.Deleted), typeof(Replies.Found), typeof(Replies.NotFound),
        typeof(Replies.VersionMismatch), typeof(Replies.InvalidKey), typeof(Replies.KeyPage), typeof(Replies.Unavailable),
        typeof(Replies.IdempotencyConflict), typeof(ForwardBatch), typeof(ReplyBatch), typeof(PartitionsHere),
        typeof(Replies.Unrecoverable), typeof(UnrecoverableHere), typeof(Replies.FetchFromOwner),
        typeof(Queries.Locate), typeof(Replies.Located),
    ];

    public override int Identifier => Id;

    public override string Manifest(object o) => ManifestOf(o);

    private static string ManifestOf(object o) => o switch
    {
        Events.ValueWritten => WrittenManifest,
        Events.ValueDeleted => DeletedManifest,
        Events.WriteRefused => RefusedManifest,
        PartitionState => SnapshotManifest,
        Commands.Put => PutManifest,
        Commands.Delete => DeleteManifest,
        Queries.Get => GetManifest,
        Queries.ListKeys => ListManifest,
        Replies.Written => WrittenReply,
        Replies.Deleted => DeletedReply,
        Replies.Found => FoundReply,
        Replies.NotFound => NotFoundReply,
        Replies.VersionMismatch => MismatchReply,
        Replies.InvalidKey => InvalidKeyReply,
        Replies.KeyPage => PageReply,
        Replies.Unavailable => UnavailableReply,
        Replies.IdempotencyConflict => IdempotencyConflictReply,
        ForwardBatch => ForwardBatchManifest,
        ReplyBatch => ReplyBatchManifest,
        PartitionsHere => PartitionsHereManifest,
        Replies.Unrecoverable => UnrecoverableReply,
        UnrecoverableHere => UnrecoverableHereManifest,
        Replies.FetchFromOwner => FetchFromOwnerReply,
        Queries.Locate => LocateManifest,
        Replies.Located => LocatedReply,
        _ => throw new ArgumentException($"{nameof(KvSerializer)} cannot serialize {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        // A snapshot is ~200 KB (10,000 remembered requests): size the buffer once instead of doubling up to it.
        using var stream = new MemoryStream(obj is PartitionState state ? EstimateSnapshotSize(state) : 256);
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            Write(w, obj);
        }

        return stream.ToArray();
    }

    /// <summary>
    /// Reads what <see cref="ToBinary"/> wrote. Bytes that do not match the layout (truncated, damaged, trailing
    /// garbage, lengths or counts beyond what is there) are a <see cref="SerializationException"/>, never an allocation
    /// sized by whatever the bytes claim: stored rows and remote frames are both inputs this process did not check.
    /// </summary>
    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), new UTF8Encoding(false, throwOnInvalidBytes: true));
        try
        {
            var message = Read(r, manifest);
            if (r.BaseStream.Position != r.BaseStream.Length)
            {
                throw new SerializationException($"{nameof(KvSerializer)}: {r.BaseStream.Length - r.BaseStream.Position} unexpected trailing bytes after a '{manifest}'.");
            }

            return message;
        }
        // IOException: BinaryReader's own complaints (a string length that decodes to a negative number), and
        // EndOfStreamException (bytes missing) derives from it.
        catch (Exception e) when (e is IOException or ArgumentException or FormatException or InvalidCastException or DecoderFallbackException or OverflowException)
        {
            throw new SerializationException($"{nameof(KvSerializer)}: {bytes.Length} bytes are not a valid '{manifest}': {e.Message}", e);
        }
    }

    private static object Read(BinaryReader r, string manifest)
    {
        return manifest switch
        {
            WrittenManifestV1 => new Events.ValueWritten(r.ReadString(), ReadBytes(r), r.ReadInt64(), ReadTime(r)),
            DeletedManifestV1 => new Events.ValueDeleted(r.ReadString(), r.ReadInt64(), ReadTime(r)),
            SnapshotManifestV1 => ReadSnapshot(r, withRequests: false, withRefusals: false, withFingerprints: false),
            SnapshotManifestV2 => ReadSnapshot(r, withRequests: true, withRefusals: false, withFingerprints: false),
            SnapshotManifestV3 => ReadSnapshot(r, withRequests: true, withRefusals: true, withFingerprints: false),
            WrittenManifest => new Events.ValueWritten(r.ReadString(), ReadBytes(r), r.ReadInt64(), ReadTime(r), ReadOptionalGuid(r)),
            DeletedManifest => new Events.ValueDeleted(r.ReadString(), r.ReadInt64(), ReadTime(r), ReadOptionalGuid(r)),
            RefusedManifestV1 => new Events.WriteRefused(r.ReadString(), r.ReadInt64(), ReadOptionalLong(r), ReadTime(r), ReadOptionalGuid(r)),
            RefusedManifest => new Events.WriteRefused(r.ReadString(), r.ReadInt64(), ReadOptionalLong(r), ReadTime(r), ReadOptionalGuid(r), r.ReadUInt64()),
            SnapshotManifestV4 => ReadSnapshot(r, withRequests: true, withRefusals: true, withFingerprints: true),
            SnapshotManifest => ReadCompactSnapshot(r),
            PutManifest => new Commands.Put(r.ReadString(), ReadBytes(r), ReadOptionalLong(r), ReadOptionalGuid(r)),
            DeleteManifest => new Commands.Delete(r.ReadString(), ReadOptionalLong(r), ReadOptionalGuid(r)),
            GetManifest => new Queries.Get(r.ReadString()),
            ListManifest => new Queries.ListKeys(new PartitionId(r.ReadInt32()), r.ReadString(), r.ReadBoolean() ? r.ReadString() : null, r.ReadInt32()),
            WrittenReply => new Replies.Written(r.ReadString(), r.ReadInt64(), r.ReadBoolean()),
            DeletedReply => new Replies.Deleted(r.ReadString(), r.ReadInt64()),
            FoundReply => new Replies.Found(r.ReadString(), ReadBytes(r), r.ReadInt64(), ReadTime(r), ReadTime(r)),
            NotFoundReply => new Replies.NotFound(r.ReadString()),
            MismatchReply => new Replies.VersionMismatch(r.ReadString(), r.ReadInt64(), r.ReadInt64()),
            InvalidKeyReply => new Replies.InvalidKey(r.ReadString(), r.ReadString()),
            PageReply => ReadPage(r),
            UnavailableReply => new Replies.Unavailable(r.ReadString(), TimeSpan.FromTicks(r.ReadInt64())),
            IdempotencyConflictReply => new Replies.IdempotencyConflict(r.ReadString(), r.ReadString()),
            ForwardBatchManifest => new ForwardBatch(ReadItems(r, (id, item) => new ForwardedRequest(id, (IPartitionMessage)item))),
            ReplyBatchManifest => new ReplyBatch(ReadItems(r, (id, item) => new ForwardedReply(id, (IPartitionReply)item))),
            PartitionsHereManifest => new PartitionsHere(Enumerable.Range(0, ReadCount(r, sizeof(int))).Select(_ => r.ReadInt32()).ToList()),
            UnrecoverableReply => new Replies.Unrecoverable(new PartitionId(r.ReadInt32()), r.ReadString(), TimeSpan.FromTicks(r.ReadInt64())),
            FetchFromOwnerReply => new Replies.FetchFromOwner(r.ReadString(), r.ReadInt64(), r.ReadInt32(), r.ReadString()),
            LocateManifest => new Queries.Locate(r.ReadString()),
            LocatedReply => new Replies.Located(r.ReadString(), r.ReadBoolean() ? r.ReadString() : null),
            // At least a partition and a one-byte string length each.
            UnrecoverableHereManifest => new UnrecoverableHere(Enumerable.Range(0, ReadCount(r, sizeof(int) + 1)).Select(_ => new UnrecoverablePartition(r.ReadInt32(), r.ReadString())).ToList()),
            _ => throw new SerializationException($"{nameof(KvSerializer)} does not know the manifest '{manifest}'."),
        };
    }

    private static void Write(BinaryWriter w, object obj)
    {
        switch (obj)
        {
            case Events.ValueWritten e:
                w.Write(e.Key); WriteBytes(w, e.Value); w.Write(e.Version); WriteTime(w, e.At); WriteOptionalGuid(w, e.RequestId);
                break;
            case Events.ValueDeleted e:
                w.Write(e.Key); w.Write(e.Version); WriteTime(w, e.At); WriteOptionalGuid(w, e.RequestId);
                break;
            case Events.WriteRefused e:
                w.Write(e.Key); w.Write(e.Version); WriteOptionalLong(w, e.ExpectedVersion); WriteTime(w, e.At); WriteOptionalGuid(w, e.RequestId); w.Write(e.Fingerprint);
                break;
            case PartitionState s:
                WriteSnapshot(w, s);
                break;
            case Commands.Put c:
                w.Write(c.Key); WriteBytes(w, c.Value); WriteOptionalLong(w, c.ExpectedVersion); WriteOptionalGuid(w, c.RequestId);
                break;
            case Commands.Delete c:
                w.Write(c.Key); WriteOptionalLong(w, c.ExpectedVersion); WriteOptionalGuid(w, c.RequestId);
                break;
            case Queries.Get q:
                w.Write(q.Key);
                break;
            case Queries.ListKeys q:
                w.Write(q.Partition.Value); w.Write(q.Prefix); w.Write(q.After is not null);
                if (q.After is not null)
                {
                    w.Write(q.After);
                }

                w.Write(q.Limit);
                break;
            case Replies.Written r:
                w.Write(r.Key); w.Write(r.Version); w.Write(r.Created);
                break;
            case Replies.Deleted r:
                w.Write(r.Key); w.Write(r.Version);
                break;
            case Replies.Found r:
                w.Write(r.Key); WriteBytes(w, r.Value); w.Write(r.Version); WriteTime(w, r.CreatedAt); WriteTime(w, r.UpdatedAt);
                break;
            case Replies.NotFound r:
                w.Write(r.Key);
                break;
            case Replies.VersionMismatch r:
                w.Write(r.Key); w.Write(r.ExpectedVersion); w.Write(r.CurrentVersion);
                break;
            case Replies.InvalidKey r:
                w.Write(r.Key); w.Write(r.Reason);
                break;
            case Replies.KeyPage r:
                w.Write(r.Partition.Value); w.Write(r.Keys.Count);
                foreach (var kv in r.Keys)
                {
                    w.Write(kv.Key); w.Write(kv.Version);
                }

                break;
            case Replies.Unavailable r:
                w.Write(r.Reason); w.Write(r.RetryAfter.Ticks);
                break;
            case Replies.IdempotencyConflict r:
                w.Write(r.Key); w.Write(r.Reason);
                break;
            case ForwardBatch b:
                WriteItems(w, b.Items, i => (i.Id, i.Message));
                break;
            case ReplyBatch b:
                WriteItems(w, b.Items, i => (i.Id, i.Reply));
                break;
            case PartitionsHere h:
                w.Write(h.Partitions.Count);
                foreach (var partition in h.Partitions)
                {
                    w.Write(partition);
                }

                break;
            case Replies.Unrecoverable r:
                w.Write(r.Partition.Value); w.Write(r.Reason); w.Write(r.RetryAfter.Ticks);
                break;
            case Replies.FetchFromOwner r:
                w.Write(r.Key); w.Write(r.Version); w.Write(r.Length); w.Write(r.OwnerUrl);
                break;
            case Queries.Locate q:
                w.Write(q.Key);
                break;
            case Replies.Located r:
                w.Write(r.Key); w.Write(r.OwnerUrl is not null);
                if (r.OwnerUrl is not null)
                {
                    w.Write(r.OwnerUrl);
                }

                break;
            case UnrecoverableHere u:
                w.Write(u.Partitions.Count);
                foreach (var partition in u.Partitions)
                {
                    w.Write(partition.Partition); w.Write(partition.Reason);
                }

                break;
            default:
                throw new ArgumentException($"{nameof(KvSerializer)} cannot serialize {obj.GetType()}.", nameof(obj));
        }
    }

    // Each item: its id, its own manifest, then its own layout, so a batch carries any message this serializer knows.
    private static void WriteItems<T>(BinaryWriter w, IReadOnlyList<T> items, Func<T, (long Id, object Item)> parts)
    {
        w.Write(items.Count);
        foreach (var entry in items)
        {
            var (id, item) = parts(entry);
            w.Write(id);
            w.Write(ManifestOf(item));
            Write(w, item);
        }
    }

    private static List<T> ReadItems<T>(BinaryReader r, Func<long, object, T> create)
    {
        // Only requests and replies travel in a batch, never another batch or a snapshot: refused here, before reading
        // them, because a frame of batches nested in batches would otherwise recurse until the process's stack overflows
        // (an exception nothing can catch), and 4 MiB of frame holds ~190,000 levels.
        // At least an id and a one-byte manifest length each.
        var count = ReadCount(r, sizeof(long) + 1);
        var items = new List<T>(count);
        for (var i = 0; i < count; i++)
        {
            var id = r.ReadInt64();
            var manifest = r.ReadString();
            if (!ItemManifests.Contains(manifest))
            {
                throw new SerializationException($"{nameof(KvSerializer)}: a '{manifest}' cannot be an item of a batch.");
            }

            items.Add(create(id, Read(r, manifest)));
        }

        return items;
    }

    // Snapshot v5 flags, above a remembered request's kind (bits 0-2).
    private const byte IdFollowsPrefix = 0x08;
    private const byte KeyIsEntry = 0x10;
    private const byte KindMask = 0x07;

    /// <summary>
    /// Snapshot v5: the entries as v4 wrote them, then the remembered requests, oldest first, each as
    /// <list type="bullet">
    /// <item>a byte: its reply's kind (1 written and created, 2 written, 3 deleted, 4 version mismatch, 5 not found),
    /// plus <see cref="IdFollowsPrefix"/> and <see cref="KeyIsEntry"/>;</item>
    /// <item>its id: 16 bytes, or, when an earlier id had the same first 8 bytes (a node's prefix,
    /// <see cref="NodeRequestIds"/>), that prefix's number (in order of first appearance, 7-bit encoded) and the
    /// zigzag, 7-bit encoded difference of its last 8 bytes from those of that prefix's previous id;</item>
    /// <item>its 8-byte fingerprint;</item>
    /// <item>its key: the number of the entry above with that key (7-bit encoded), or the key itself;</item>
    /// <item>its version(s), 7-bit encoded: none for not found, current then expected for a mismatch.</item>
    /// </list>
    /// Why: v4 took 16 + 8 + 1 + key + 8 bytes a request, ~300 KB of a partition's ~330 KB snapshot under
    /// <c>bench load</c>, and a partition saves one every 1,000 writes; v5 takes ~15 bytes for the ids a node makes.
    /// </summary>
    private static void WriteSnapshot(BinaryWriter w, PartitionState state)
    {
        w.Write(state.Entries.Count);
        var entryNumbers = new Dictionary<string, int>(state.Entries.Count, StringComparer.Ordinal);
        foreach (var (key, e) in state.Entries)
        {
            entryNumbers[key] = entryNumbers.Count;
            w.Write(key); WriteBytes(w, e.Value); w.Write(e.Version); WriteTime(w, e.CreatedAt); WriteTime(w, e.UpdatedAt); w.Write(e.Deleted);
        }

        w.Write(state.Recent.Count);
        // Each prefix seen so far: its number and the last 8 bytes of its latest id.
        var prefixes = new Dictionary<ulong, (int Number, ulong Last)>();
        Span<byte> guid = stackalloc byte[16];
        foreach (var (id, (reply, fingerprint)) in state.Recent.Remembered)
        {
            var (kind, key, version, expected) = reply switch
            {
                Replies.Written written => (written.Created ? 1 : 2, written.Key, written.Version, 0L),
                Replies.Deleted deleted => (3, deleted.Key, deleted.Version, 0L),
                Replies.VersionMismatch mismatch => (4, mismatch.Key, mismatch.CurrentVersion, mismatch.ExpectedVersion),
                Replies.NotFound notFound => (5, notFound.Key, 0L, 0L),
                _ => throw new ArgumentException($"Unexpected remembered reply {reply.GetType()}.", nameof(state)),
            };
            id.TryWriteBytes(guid);
            var (prefix, rest) = (BinaryPrimitives.ReadUInt64LittleEndian(guid), BinaryPrimitives.ReadUInt64LittleEndian(guid[8..]));
            var known = prefixes.TryGetValue(prefix, out var previous);
            var isEntry = entryNumbers.TryGetValue(key, out var entry);
            w.Write((byte)(kind | (known ? IdFollowsPrefix : 0) | (isEntry ? KeyIsEntry : 0)));
            if (known)
            {
                w.Write7BitEncodedInt(previous.Number);
                w.Write7BitEncodedInt64(ZigZag(unchecked((long)(rest - previous.Last))));
                prefixes[prefix] = (previous.Number, rest);
            }
            else
            {
                w.Write(guid);
                prefixes[prefix] = (prefixes.Count, rest);
            }

            w.Write(fingerprint);
            if (isEntry)
            {
                w.Write7BitEncodedInt(entry);
            }
            else
            {
                w.Write(key);
            }

            if (kind != 5)
            {
                w.Write7BitEncodedInt64(version);
            }

            if (kind == 4)
            {
                w.Write7BitEncodedInt64(expected);
            }
        }
    }

    private static PartitionState ReadCompactSnapshot(BinaryReader r)
    {
        var entries = ReadEntries(r);
        // At least a kind, two bytes of id, a fingerprint and a byte of key each.
        var count = ReadCount(r, 1 + 2 + sizeof(ulong) + 1);
        var recent = new List<(Guid, RememberedRequest)>(count);
        var prefixes = new List<(ulong Prefix, ulong Last)>();
        Span<byte> guid = stackalloc byte[16];
        for (var i = 0; i < count; i++)
        {
            var head = r.ReadByte();
            if ((head & ~(KindMask | IdFollowsPrefix | KeyIsEntry)) != 0)
            {
                throw new SerializationException($"Unknown remembered request flags {head:X2}.");
            }

            if ((head & IdFollowsPrefix) != 0)
            {
                var number = r.Read7BitEncodedInt();
                if ((uint)number >= (uint)prefixes.Count)
                {
                    throw new SerializationException($"A remembered request names id prefix {number} of {prefixes.Count}.");
                }

                var (prefix, last) = prefixes[number];
                var rest = unchecked(last + (ulong)UnZigZag(r.Read7BitEncodedInt64()));
                prefixes[number] = (prefix, rest);
                BinaryPrimitives.WriteUInt64LittleEndian(guid, prefix);
                BinaryPrimitives.WriteUInt64LittleEndian(guid[8..], rest);
            }
            else
            {
                r.BaseStream.ReadExactly(guid);
                prefixes.Add((BinaryPrimitives.ReadUInt64LittleEndian(guid), BinaryPrimitives.ReadUInt64LittleEndian(guid[8..])));
            }

            var fingerprint = r.ReadUInt64();
            string key;
            if ((head & KeyIsEntry) != 0)
            {
                var entry = r.Read7BitEncodedInt();
                key = (uint)entry < (uint)entries.Length
                    ? entries[entry].Key
                    : throw new SerializationException($"A remembered request names entry {entry} of {entries.Length}.");
            }
            else
            {
                key = r.ReadString();
            }

            var kind = head & KindMask;
            var version = kind == 5 ? 0 : r.Read7BitEncodedInt64();
            recent.Add((new Guid(guid), new RememberedRequest(RememberedReply(r, kind, key, version, withRefusals: true, static r => r.Read7BitEncodedInt64()), fingerprint)));
        }

        return PartitionState.FromEntries(entries, recent);
    }

    /// <summary>
    /// A remembered reply from its stored kind, as every snapshot version numbers them (1 written and created,
    /// 2 written, 3 deleted, 4 version mismatch, 5 not found; the last two since v3); a mismatch's expected version
    /// follows the rest, in the version's own encoding.
    /// </summary>
    private static IPartitionReply RememberedReply(BinaryReader r, int kind, string key, long version, bool withRefusals, Func<BinaryReader, long> readExpected) => kind switch
    {
        1 => new Replies.Written(key, version, Created: true),
        2 => new Replies.Written(key, version, Created: false),
        3 => new Replies.Deleted(key, version),
        4 when withRefusals => new Replies.VersionMismatch(key, readExpected(r), version),
        5 when withRefusals => new Replies.NotFound(key),
        _ => throw new SerializationException($"Unknown remembered reply kind {kind}."),
    };

    private static long ZigZag(long value) => (value << 1) ^ (value >> 63);

    private static long UnZigZag(long value) => (long)((ulong)value >> 1) ^ -(value & 1);

    private static KeyValuePair<string, Entry>[] ReadEntries(BinaryReader r)
    {
        // At least a key's length, a value's length, a version, two times and a flag each.
        var count = ReadCount(r, 1 + sizeof(int) + (3 * sizeof(long)) + 1);
        var entries = new KeyValuePair<string, Entry>[count];
        for (var i = 0; i < count; i++)
        {
            var key = r.ReadString();
            entries[i] = new(key, new Entry(ReadBytes(r), r.ReadInt64(), ReadTime(r), ReadTime(r), r.ReadBoolean()));
        }

        return entries;
    }

    private static int EstimateSnapshotSize(PartitionState state)
    {
        var entries = 64L;
        foreach (var (key, e) in state.Entries)
        {
            entries += (key.Length * 3L) + e.Value.Length + 40;
        }

        // Kind, a node's id in ~3 bytes, fingerprint, key as an entry's number, version per remembered request.
        return (int)Math.Min(entries + (state.Recent.Count * 18L), Array.MaxLength);
    }

    private static PartitionState ReadSnapshot(BinaryReader r, bool withRequests, bool withRefusals, bool withFingerprints)
    {
        var entries = ReadEntries(r);
        var recent = new List<(Guid, RememberedRequest)>();
        if (withRequests)
        {
            // At least an id, a kind, a key's length and a version each.
            var requests = ReadCount(r, 16 + 1 + 1 + sizeof(long));
            for (var i = 0; i < requests; i++)
            {
                var id = new Guid(r.ReadBytes(16));
                var fingerprint = withFingerprints ? r.ReadUInt64() : 0;
                var kind = r.ReadByte();
                var key = r.ReadString();
                var version = r.ReadInt64();
                recent.Add((id, new RememberedRequest(RememberedReply(r, kind, key, version, withRefusals, static r => r.ReadInt64()), fingerprint)));
            }
        }

        return PartitionState.FromEntries(entries, recent);
    }

    private static Replies.KeyPage ReadPage(BinaryReader r)
    {
        var partition = new PartitionId(r.ReadInt32());
        var count = ReadCount(r, 1 + sizeof(long));
        var keys = new KeyVersion[count];
        for (var i = 0; i < count; i++)
        {
            keys[i] = new KeyVersion(r.ReadString(), r.ReadInt64());
        }

        return new Replies.KeyPage(partition, keys);
    }

    private static void WriteBytes(BinaryWriter w, byte[] bytes)
    {
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    private static byte[] ReadBytes(BinaryReader r) => r.ReadBytes(ReadCount(r, 1));

    /// <summary>A length or count, checked against the bytes left: each of the items it counts takes at least <paramref name="minBytesEach"/>.</summary>
    private static int ReadCount(BinaryReader r, int minBytesEach)
    {
        var count = r.ReadInt32();
        var left = r.BaseStream.Length - r.BaseStream.Position;
        if (count < 0 || (long)count * minBytesEach > left)
        {
            throw new SerializationException($"{nameof(KvSerializer)}: a count of {count} does not fit in the {left} bytes left.");
        }

        return count;
    }

    // Unix milliseconds, UTC: what every store and client understands; sub-millisecond precision is not kept.
    private static void WriteTime(BinaryWriter w, DateTimeOffset t) => w.Write(t.ToUnixTimeMilliseconds());

    private static DateTimeOffset ReadTime(BinaryReader r) => DateTimeOffset.FromUnixTimeMilliseconds(r.ReadInt64());

    private static void WriteOptionalLong(BinaryWriter w, long? value)
    {
        w.Write(value.HasValue);
        if (value.HasValue)
        {
            w.Write(value.Value);
        }
    }

    private static long? ReadOptionalLong(BinaryReader r) => r.ReadBoolean() ? r.ReadInt64() : null;

    private static void WriteOptionalGuid(BinaryWriter w, Guid? value)
    {
        w.Write(value.HasValue);
        if (value.HasValue)
        {
            Span<byte> bytes = stackalloc byte[16];
            value.Value.TryWriteBytes(bytes);
            w.Write(bytes);
        }
    }

    private static Guid? ReadOptionalGuid(BinaryReader r) => r.ReadBoolean() ? new Guid(r.ReadBytes(16)) : null;
}
