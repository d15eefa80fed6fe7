using ActorHa.Cluster;

namespace ActorHa.Api;

/// <summary>
/// What one node takes on at once, so that more clients than it can serve get a prompt 503 instead of taking the
/// cluster down. Found by an overload probe: hundreds of concurrent 1 MiB writes, or of key listings (each asks all
/// 32 partitions and carries their pages back), spread over all nodes, queued megabytes on the remoting connections
/// between nodes until the heartbeats behind them were late, and healthy members were downed. Small requests are not
/// limited here: 1,000 concurrent small reads or writes ran clean.
/// </summary>
public sealed class Admission(ActorHaSettings settings)
{
    private long _writeBytes;
    private int _lists;

    /// <summary>Reserves room for a value of <paramref name="bytes"/>; false (nothing reserved) when the node is at its limit.</summary>
    public bool TryReserveWrite(long bytes)
    {
        if (Interlocked.Add(ref _writeBytes, bytes) <= settings.MaxInFlightWriteBytes)
        {
            return true;
        }

        Interlocked.Add(ref _writeBytes, -bytes);
        return false;
    }

    public void ReleaseWrite(long bytes) => Interlocked.Add(ref _writeBytes, -bytes);

    public bool TryEnterList()
    {
        if (Interlocked.Increment(ref _lists) <= settings.MaxConcurrentLists)
        {
            return true;
        }

        Interlocked.Decrement(ref _lists);
        return false;
    }

    public void ExitList() => Interlocked.Decrement(ref _lists);
}
