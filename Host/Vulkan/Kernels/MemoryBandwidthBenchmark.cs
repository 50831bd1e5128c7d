using System.Diagnostics;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>The device's measured memory bandwidth: bytes read plus bytes written per second by a buffer copy.</summary>
/// <param name="CopyBufferGigabytesPerSecond">vkCmdCopyBuffer.</param>
/// <param name="ShaderCopyGigabytesPerSecond">A copy compute shader (16-byte loads and stores).</param>
public sealed record MemoryBandwidth(double CopyBufferGigabytesPerSecond, double ShaderCopyGigabytesPerSecond)
{
    /// <summary>The better of the two: the reference for "fraction of bandwidth".</summary>
    public double GigabytesPerSecond => Math.Max(CopyBufferGigabytesPerSecond, ShaderCopyGigabytesPerSecond);
}

/// <summary>Measures <see cref="MemoryBandwidth"/> with copies of a buffer far larger than caches.</summary>
public static class MemoryBandwidthBenchmark
{
    /// <summary>Runs both copies (median of <paramref name="submits"/> timed submissions after a warm-up).</summary>
    public static MemoryBandwidth Run(VulkanContext context, ulong bytes = 64UL << 20, int submits = 5)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(submits);
        using VulkanBuffer a = context.CreateBuffer(bytes, "bandwidth source");
        using VulkanBuffer b = context.CreateBuffer(bytes, "bandwidth destination");
        double copy;
        using (VulkanCommandRecorder rec = context.CreateRecorder())
        {
            rec.Copy(a, 0, b, 0, bytes);
            copy = Time(rec, submits);
        }
        double shader;
        using (VulkanCommandRecorder rec = context.CreateRecorder())
        {
            new CopyKernel(context).Record(rec, a, b, bytes);
            shader = Time(rec, submits);
        }
        return new MemoryBandwidth(2.0 * bytes / copy / 1e9, 2.0 * bytes / shader / 1e9);
    }

    private static double Time(VulkanCommandRecorder rec, int submits)
    {
        rec.Submit();
        var times = new double[submits];
        for (int i = 0; i < submits; i++)
        {
            long start = Stopwatch.GetTimestamp();
            rec.Submit();
            times[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(times);
        return times[submits / 2];
    }
}
