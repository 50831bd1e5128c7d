using Xunit;

// Tests build seeded models (torch.manual_seed, then layer initialisation) and compare numbers
// across model instances. libtorch's default generator is process-global, so test classes running
// in parallel would interleave their random draws. One at a time keeps every seeded model exact.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
