using BenchmarkDotNet.Running;

// The headline figures are end to end (`./actorha bench load`); these time the pieces every write passes
// through, to show which of them could matter. Run: see README.md, "Hot-path micro-benchmarks".
BenchmarkSwitcher.FromAssembly(typeof(ActorHa.Benchmarks.WritePathBenchmarks).Assembly).Run(args);
