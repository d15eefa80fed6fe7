using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace ActorHa.Cluster.Leases;

/// <summary>What a partition asks before every reply: may this node still speak for its partitions?</summary>
public interface ILeaseGuard
{
    /// <summary>Incremented each time the lease is lost and taken anew; ownership from an older generation is void.</summary>
    long Generation { get; }

    bool IsValid { get; }
}

/// <summary>Timings of the node lease. ACTORHA__LEASE__TTL, __RENEWINTERVAL, __SAFETYMARGIN.</summary>
public sealed class LeaseSettings
{
    /// <summary>How long a renewal keeps the lease alive in the store; also how long a dead owner blocks its partitions.</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromMilliseconds(150);

    /// <summary>This node stops serving this long before the store would let another node take over.</summary>
    public TimeSpan SafetyMargin { get; set; } = TimeSpan.FromMilliseconds(250);

    public IEnumerable<string> Validate()
    {
        // Ten minutes is already far beyond any useful lease: a dead owner blocks its partitions for the whole TTL.
        var max = TimeSpan.FromMinutes(10);
        var problems = new[]
        {
            TimeSpanSettings.Problem("ActorHa:Lease:Ttl", Ttl, TimeSpan.FromMilliseconds(1), max),
            TimeSpanSettings.Problem("ActorHa:Lease:RenewInterval", RenewInterval, TimeSpan.FromMilliseconds(1), max),
            TimeSpanSettings.Problem("ActorHa:Lease:SafetyMargin", SafetyMargin, TimeSpan.Zero, max),
        }.OfType<string>().ToList();
        if (problems.Count == 0 && SafetyMargin + RenewInterval >= Ttl)
        {
            problems.Add($"ActorHa:Lease:SafetyMargin ({TimeSpanSettings.Format(SafetyMargin)}) + ActorHa:Lease:RenewInterval ({TimeSpanSettings.Format(RenewInterval)}) " +
                         $"must be shorter than ActorHa:Lease:Ttl ({TimeSpanSettings.Format(Ttl)}).");
        }

        return problems;
    }
}

/// <summary>
/// This node's lease in the store. While <see cref="IsValid"/> is true, the store guarantees that no other
/// node can take any partition this node owns: validity ends <see cref="LeaseSettings.SafetyMargin"/> before
/// the store's expiry, measured from the moment the last successful renewal was *sent*, on the monotonic
/// clock (which keeps counting while the process is frozen by SIGSTOP). A lease found expired in the store
/// (the process was frozen, or the store unreachable, for longer than the TTL) is void for good: its
/// partitions may be elsewhere now. The node then takes a lease of a new <see cref="Generation"/> (a new
/// lease id), and every partition that ran under the old one must stop, acquire again and recover from the
/// journal. Renewal runs on its own thread so a starved thread pool cannot silently let the lease lapse.
/// </summary>
public sealed class NodeLease : ILeaseGuard, IDisposable
{
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly IOwnershipStore _store;
    private readonly LeaseSettings _settings;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private long _validUntil;
    private long _lastSentAt;
    private long _generation;
    private string _baseId = "";
    private volatile bool _stopped;
    private Thread? _thread;
    private long _lapsedAt;
    private long _renewalSentAt;

    public NodeLease(IOwnershipStore store, LeaseSettings settings, ILogger<NodeLease> logger)
    {
        _store = store;
        _settings = settings;
        _logger = logger;
    }

    /// <summary>Raised when a lease was found expired in the store and a new generation was taken.</summary>
    public event Action<long>? Renewed;

    /// <summary>The lease id in the store: this node's address and incarnation, plus the generation.</summary>
    public string NodeId { get; private set; } = "";

    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>Whether the renew thread is still running (it ends once renewing stopped and its last store call returned).</summary>
    public bool IsRenewing => _thread is { IsAlive: true };

    public bool IsValid => !_stopped && Stopwatch.GetTimestamp() < Interlocked.Read(ref _validUntil);

    /// <summary>How long the lease has not been current: zero while it is, and before it was first taken.</summary>
    public TimeSpan NotCurrentFor
    {
        get
        {
            var until = Interlocked.Read(ref _validUntil);
            var now = Stopwatch.GetTimestamp();
            return until == 0 || now < until ? TimeSpan.Zero : Stopwatch.GetElapsedTime(until, now);
        }
    }

    /// <summary>How long the renewal under way has waited for the store: zero between renewals. A renewal takes milliseconds.</summary>
    public TimeSpan RenewalWaiting => Interlocked.Read(ref _renewalSentAt) is var sentAt and not 0 ? Stopwatch.GetElapsedTime(sentAt) : TimeSpan.Zero;

    /// <summary>The id and generation to acquire partitions under, read together.</summary>
    public (string NodeId, long Generation) Current
    {
        get
        {
            lock (_stop)
            {
                return (NodeId, _generation);
            }
        }
    }

    /// <summary>Takes the lease (one renewal, synchronously) and keeps renewing it in the background.</summary>
    public void Start(string nodeId)
    {
        _baseId = nodeId;
        bool taken;
        try
        {
            _store.Initialize();
            NextGeneration();
            taken = Renew();
        }
        catch (System.Data.Common.DbException e)
        {
            // Said in one line by `actorha node` (exit code 5), naming the file or database, not as the host's stack trace.
            throw new Persistence.StoreUnavailableException($"cannot take this node's lease in {_store.Location}: {e.Message}", e);
        }

        if (!taken)
        {
            throw new InvalidOperationException($"The node lease {NodeId} could not be taken.");
        }

        _thread = new Thread(RenewLoop) { IsBackground = true, Name = "actorha-node-lease" };
        _thread.Start();
    }

    /// <summary>Stops renewing: the lease lapses and partitions stop serving (used when this node is downed or leaves).</summary>
    public void StopRenewing()
    {
        _stopped = true;
        _stop.Cancel();
    }

    /// <summary>Stops renewing and ends the lease in the store at once; call only after every partition here has stopped.</summary>
    public void Release()
    {
        StopRenewing();
        if (NodeId.Length > 0)
        {
            try
            {
                _store.ReleaseNode(NodeId);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogWarning(e, "Could not release node lease {Node}; it expires by itself within {Ttl} ms", NodeId, _settings.Ttl.TotalMilliseconds);
            }
        }
    }

    public void Dispose()
    {
        StopRenewing();

        // The renew thread may be between its loop check and its wait on _stop's handle: disposing the token source
        // under it throws ObjectDisposedException on that thread, which ends the process (seen once: a test host
        // crashed while a spec disposed its leases). Cancelled, the thread leaves within one store call; wait for it.
        // If a store call hangs past the wait, leave the token source to the finalizer rather than pull it away.
        if (_thread is { } thread && thread != Thread.CurrentThread && !thread.Join(DisposeWait))
        {
            _logger.LogWarning("Node lease {Node}: the renew thread did not stop within {Ms:0} ms", NodeId, DisposeWait.TotalMilliseconds);
            return;
        }

        _stop.Dispose();
    }

    private void RenewLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            _stop.Token.WaitHandle.WaitOne(_settings.RenewInterval);
            if (_stop.IsCancellationRequested)
            {
                break;
            }

            NoteLapse();
            try
            {
                if (!Renew())
                {
                    var expired = NodeId;
                    NextGeneration();
                    var renewed = Renew();
                    _logger.LogError("Node lease {Expired} had expired in the store (was this process frozen, or the store unreachable?); its partitions may be served elsewhere now. Took lease {Node}{Result}; partitions will re-acquire and recover.",
                        expired, NodeId, renewed ? "" : " (not yet)");
                    Renewed?.Invoke(Generation);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // Validity lapses by itself if this keeps failing; nothing unsafe happens meanwhile.
                _logger.LogWarning("Renewing node lease {Node} failed: {Error}", NodeId, e.Message);
            }
        }
    }

    /// <summary>
    /// Says once when the lease stops being current, and once when it is current again: in between every request for a
    /// partition here is answered 503, and a store that hangs (frozen, failing over) would otherwise leave the log
    /// silent until its calls return.
    /// </summary>
    private void NoteLapse()
    {
        var valid = IsValid;
        if (!valid && _lapsedAt == 0 && !_stopped)
        {
            // Counted from when validity ended, not from when this loop got to notice it.
            _lapsedAt = Math.Max(1, Interlocked.Read(ref _validUntil));
            _logger.LogWarning("Node lease {Node} is not current: the store has not confirmed a renewal for {Ms:0} ms (unreachable or slow?). Partitions on this node answer 503, and /healthz/ready does too, until a renewal succeeds.",
                NodeId, _lastSentAt == 0 ? 0 : Stopwatch.GetElapsedTime(_lastSentAt).TotalMilliseconds);
        }
        else if (valid && _lapsedAt != 0)
        {
            _logger.LogInformation("Node lease {Node} is current again after {Ms:0} ms", NodeId, Stopwatch.GetElapsedTime(_lapsedAt).TotalMilliseconds);
            _lapsedAt = 0;
        }
    }

    private void NextGeneration()
    {
        lock (_stop)
        {
            _generation++;
            NodeId = $"{_baseId}/{_generation}";
        }
    }

    private bool Renew()
    {
        var sentAt = Stopwatch.GetTimestamp();
        Interlocked.Exchange(ref _renewalSentAt, sentAt);
        try
        {
            if (!_store.RenewNode(NodeId, _settings.Ttl))
            {
                return false;
            }
        }
        finally
        {
            Interlocked.Exchange(ref _renewalSentAt, 0);
        }

        var took = Stopwatch.GetElapsedTime(sentAt);
        var gap = _lastSentAt == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_lastSentAt, sentAt);
        if (took > _settings.RenewInterval || gap > _settings.RenewInterval * 2)
        {
            // Each late renewal eats into the validity window; once it is gone every partition here stops.
            _logger.LogWarning("Node lease {Node} renewal was slow: it took {Ms:0} ms and was sent {Gap:0} ms after the previous one (validity lasts {Valid:0} ms); GC pauses so far {Pause:0} ms",
                NodeId, took.TotalMilliseconds, gap.TotalMilliseconds, (_settings.Ttl - _settings.SafetyMargin).TotalMilliseconds, GC.GetTotalPauseDuration().TotalMilliseconds);
        }

        _lastSentAt = sentAt;

        var validFor = _settings.Ttl - _settings.SafetyMargin;
        Interlocked.Exchange(ref _validUntil, sentAt + (long)(validFor.TotalSeconds * Stopwatch.Frequency));
        return true;
    }
}
