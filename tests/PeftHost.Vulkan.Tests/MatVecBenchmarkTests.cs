using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>The benchmark runs and reports consistent figures (on a small shape; the real one is 4096x14336).</summary>
public sealed class MatVecBenchmarkTests(VulkanFixture fixture)
{
    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q8_0)]
    public void Reports_time_and_bandwidth(GgmlType type)
    {
        MatVecBenchmarkResult r = MatVecBenchmark.Run(fixture.Full, type, 64, 1024, productsPerSubmit: 2, submits: 3);
        Assert.Equal(GgmlTypeTraits.ByteCount(type, 64 * 1024), r.WeightBytes);
        Assert.True(r.SecondsPerProduct > 0);
        Assert.Equal(r.WeightBytes / r.SecondsPerProduct / 1e9, r.GigabytesPerSecond, 6);
        Assert.StartsWith("matvec_", r.ShaderName, StringComparison.Ordinal);
    }
}
