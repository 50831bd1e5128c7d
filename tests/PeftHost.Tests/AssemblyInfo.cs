using Xunit;

// Tests build seeded models (torch.manual_seed, then layer initialisation) and compare numbers
// across model instances. libtorch's default generator is process-global, so test classes running
// in parallel would interleave their random draws. One at a time keeps every seeded model exact.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace PeftHost.Tests
{
    internal static class TorchStartup
    {
        // The tests run libtorch as pefthost does: with the MKL vendor shim on AMD CPUs, so every
        // conformance check (1e-4 against transformers) also covers MKL's AVX-512 kernels.
        [System.Runtime.CompilerServices.ModuleInitializer]
        internal static void LoadLikeTheCli() => PeftHost.Engine.Runtime.TorchCpuMath.ConfigureBeforeTorchLoads();
    }
}
