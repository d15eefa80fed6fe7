using ActorHa.Cluster;
using ActorHa.Cluster.Persistence;
using ActorHa.Domain;
using Akka.Actor;
using BenchmarkDotNet.Attributes;

namespace ActorHa.Benchmarks;

/// <summary>
/// The CPU work one durable write does inside ActorHa's own code, in the shape `bench load` produces: 10,000 keys
/// over 32 partitions (~313 per partition), 70-byte values, every request carrying a request id that the partition
/// remembers (up to <see cref="PartitionState.RememberedRequests"/>) for retries.
/// </summary>
[MemoryDiagnoser]
public class WritePathBenchmarks
{
    private const int KeysPerPartition = 313;

    private static readonly ulong[] NodePrefixes = [0x9E3779B97F4A7C15UL, 0xC2B2AE3D27D4EB4FUL, 0x165667B19E3779F9UL];

    private readonly PartitionMap _map = new(PartitionMap.DefaultPartitionCount);
    private readonly byte[] _value = new byte[70];
    private string[] _keys = [];
    private PartitionState _state = PartitionState.Empty;
    private PartitionState _live = PartitionState.Empty;
    private ActorSystem? _system;
    private KvSerializer? _serializer;
    private Events.ValueWritten _event = null!;
    private byte[] _eventBytes = [];
    private Commands.Put _put = null!;
    private byte[] _putBytes = [];
    private string _putManifest = "";
    private byte[] _snapshotBytes = [];
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _keys = Enumerable.Range(0, 10_000).Select(i => $"bench/{i}").ToArray();
        var now = DateTimeOffset.UnixEpoch.AddYears(56);
        var state = PartitionState.Empty;
        var written = 0;
        foreach (var key in _keys.Take(KeysPerPartition))
        {
            state = Apply(state, new Commands.Put(key, _value, RequestId: NodeMadeId(written++)), now);
        }

        // A partition in steady state remembers as many requests as it may (that is what the benchmark's load reaches).
        for (var i = state.Recent.Count; i < PartitionState.RememberedRequests; i++)
        {
            state = Apply(state, new Commands.Put(_keys[i % KeysPerPartition], _value, RequestId: NodeMadeId(written++)), now);
        }

        _state = state;
        _live = state;
        _system = ActorSystem.Create("bench", "akka.loglevel = WARNING");
        _serializer = new KvSerializer((ExtendedActorSystem)_system);
        _event = new Events.ValueWritten(_keys[7], _value, 42, now, Guid.NewGuid());
        _eventBytes = _serializer.ToBinary(_event);
        _put = new Commands.Put(_keys[7], _value, RequestId: Guid.NewGuid());
        _putBytes = _serializer.ToBinary(_put);
        _putManifest = _serializer.Manifest(_put);
        _snapshotBytes = _serializer.ToBinary(_state);
        Console.WriteLine($"// a steady-state snapshot ({_state.Recent.Count:N0} remembered requests): {_snapshotBytes.Length:N0} bytes");
    }

    /// <summary>
    /// The ids <c>bench load</c> writes carry: made by three nodes (<see cref="NodeRequestIds"/>), each of which also
    /// counts the requests it sends to the other 31 partitions, so one node's consecutive ids here are ~33 apart.
    /// </summary>
    private static Guid NodeMadeId(int i) => NodeRequestIds.Make(NodePrefixes[i % 3], (ulong)i * 11);

    [GlobalCleanup]
    public void Cleanup() => _system?.Terminate().Wait();

    /// <summary>Routing: which partition owns a key (FNV-1a), done by the HTTP node and by owner-routing clients.</summary>
    [Benchmark]
    public PartitionId PartitionOfKey() => _map.For(_keys[_next++ % _keys.Length]);

    /// <summary>
    /// The partition's decision and state change for one put (version, idempotency record, new state). Each call
    /// builds on the previous state, as the actor does: the immutable queue of remembered requests is only cheap
    /// (amortised) when used in one line.
    /// </summary>
    [Benchmark]
    public PartitionState DecideAndApplyPut() =>
        _live = Apply(_live, new Commands.Put(_keys[_next++ % KeysPerPartition], _value, RequestId: Guid.NewGuid()), DateTimeOffset.UtcNow);

    /// <summary>The event as the journal stores it.</summary>
    [Benchmark]
    public byte[] SerializeEvent() => _serializer!.ToBinary(_event);

    /// <summary>The event as recovery reads it back.</summary>
    [Benchmark]
    public object DeserializeEvent() => _serializer!.FromBinary(_eventBytes, KvSerializer.WrittenManifest);

    /// <summary>A put crossing to another node and back in (`--routing any`): both ends of the command's wire form.</summary>
    [Benchmark]
    public object PutCommandWireRoundTrip() => _serializer!.FromBinary(_serializer.ToBinary(_put), _putManifest);

    /// <summary>A snapshot of one partition in steady state (313 keys, 10,000 remembered requests); taken every 1,000 events.</summary>
    [Benchmark]
    public byte[] SerializeSnapshot() => _serializer!.ToBinary(_state);

    /// <summary>The same snapshot read back, as recovery does first.</summary>
    [Benchmark]
    public object DeserializeSnapshot() => _serializer!.FromBinary(_snapshotBytes, KvSerializer.SnapshotManifest);

    private static PartitionState Apply(PartitionState state, Commands.Put put, DateTimeOffset now) =>
        state.Decide(put, now).Event is { } e ? state.Apply(e) : state;
}
