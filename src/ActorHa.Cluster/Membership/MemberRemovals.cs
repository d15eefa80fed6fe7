namespace ActorHa.Cluster.Membership;

/// <summary>
/// Signals each time a member is removed from the cluster. Until then, a shard region still sends a dead
/// owner's partitions to it and those messages are lost; right after it, the region asks the coordinator
/// for their new homes. <see cref="PartitionClient"/> re-sends its outstanding requests at that moment
/// instead of waiting out the rest of its attempt timeout.
/// </summary>
public sealed class MemberRemovals
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next removal.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    internal void Signal() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
