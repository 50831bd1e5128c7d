using System.Diagnostics;
using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>Timing of one matrix-vector product, in seconds and in GB/s of weights read.</summary>
/// <param name="Type">The weight type.</param>
/// <param name="Rows">Rows of W.</param>
/// <param name="Cols">Columns of W.</param>
/// <param name="WeightBytes">Bytes of W read per product.</param>
/// <param name="SecondsPerProduct">Median device time per product (wall time of a submission over its dispatches).</param>
/// <param name="ShaderName">The shader variant that ran.</param>
public sealed record MatVecBenchmarkResult(GgmlType Type, int Rows, int Cols, long WeightBytes, double SecondsPerProduct, string ShaderName)
{
    /// <summary>Weights read per second, in GB (1e9 bytes).</summary>
    public double GigabytesPerSecond => WeightBytes / SecondsPerProduct / 1e9;
}

/// <summary>Times <see cref="MatVecKernel"/> on random weights: several products per command buffer, median of several submissions.</summary>
public static class MatVecBenchmark
{
    /// <summary>Runs the benchmark for one type and shape.</summary>
    /// <param name="context">The device (use one without validation for meaningful numbers).</param>
    /// <param name="type">Weight type.</param>
    /// <param name="rows">Rows of W (outputs).</param>
    /// <param name="cols">Columns of W (inputs), a multiple of the type's block size.</param>
    /// <param name="productsPerSubmit">Products recorded into one command buffer.</param>
    /// <param name="submits">Timed submissions (after one warm-up).</param>
    /// <param name="layout">The kernel's invocation layout.</param>
    public static MatVecBenchmarkResult Run(VulkanContext context, GgmlType type, int rows, int cols, int productsPerSubmit = 4, int submits = 5, MatVecLayout layout = MatVecLayout.Auto)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(productsPerSubmit);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(submits);
        var rng = new Random(1);
        var w = new float[(long)rows * cols];
        for (long i = 0; i < w.LongLength; i++)
        {
            w[i] = (float)(rng.NextDouble() * 2 - 1);
        }
        byte[] encoded = GgmlQuantization.Quantize(type, w);
        var x = new float[cols];
        for (int i = 0; i < cols; i++)
        {
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        using VulkanBuffer wb = context.Upload<byte>(encoded, "benchmark W");
        using VulkanBuffer xb = context.Upload<float>(x, "benchmark x");
        using VulkanBuffer yb = context.CreateBuffer((ulong)rows * 4, "benchmark y");
        var kernel = new MatVecKernel(context, type, layout: layout);
        using VulkanCommandRecorder rec = context.CreateRecorder();
        for (int i = 0; i < productsPerSubmit; i++)
        {
            kernel.Record(rec, wb, xb, yb, rows, cols);
        }
        rec.Submit();   // warm-up: pipeline compilation and first touch of memory
        var times = new double[submits];
        for (int s = 0; s < submits; s++)
        {
            long start = Stopwatch.GetTimestamp();
            rec.Submit();
            times[s] = Stopwatch.GetElapsedTime(start).TotalSeconds / productsPerSubmit;
        }
        Array.Sort(times);
        return new MatVecBenchmarkResult(type, rows, cols, encoded.LongLength, times[submits / 2], kernel.ShaderName);
    }
}
