// Each spec starts its own cluster of real processes; two at once on a 2-core machine would measure the
// machine, not ActorHa.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
