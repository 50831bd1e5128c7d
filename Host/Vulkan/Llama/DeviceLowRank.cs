using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Llama;

/// <summary>
/// An unmerged low-rank term on a device matrix: y += B (A x), A [rank, cols] and B [rows, rank] in
/// float32 with every scale already folded into B. Several adapters, and the parts of a fused
/// matrix (q|k|v, gate|up), are stacked along the rank: A's rows one after another, B's columns
/// placed beside each other with zeros where a part's rows are not its own, which is exactly the sum
/// of the terms. Two dispatches per product.
/// </summary>
internal sealed class DeviceLowRank : IDisposable
{
    private readonly DeviceMatrix _a;
    private readonly DeviceMatrix _b;
    private readonly VulkanBuffer _t;

    public DeviceLowRank(VulkanContext context, float[] a, float[] b, int rank, int rows, int cols, int maxTokens)
    {
        Rank = rank;
        VulkanBuffer? ab = null, bb = null;
        try
        {
            ab = context.Upload<float>(a, "lora A");
            bb = context.Upload<float>(b, "lora B");
            _t = context.CreateBuffer((ulong)maxTokens * (ulong)rank * 4, "lora A x");
        }
        catch
        {
            ab?.Dispose();
            bb?.Dispose();
            throw;
        }
        _a = new DeviceMatrix(context, ab, GgmlType.F32, rank, cols);
        _b = new DeviceMatrix(context, bb, GgmlType.F32, rows, rank);
    }

    /// <summary>The stacked rank (padded to a multiple of 8 for the vector path).</summary>
    public int Rank { get; }

    /// <summary>y[tokens, rows] += B (A x[tokens, cols]).</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer y, int tokens)
    {
        _a.Record(recorder, x, _t, tokens, accumulate: false);
        _b.Record(recorder, _t, y, tokens, accumulate: true);
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _t.Dispose();
    }

    /// <summary>
    /// Stacks the terms (pair, scale, first row of its part within the fused matrix) into one A and one B;
    /// null when there are none.
    /// </summary>
    public static DeviceLowRank? Stack(VulkanContext context, IReadOnlyList<(LoraPair Pair, float Scale, int RowOffset)> terms, int rows, int cols, int maxTokens)
    {
        if (terms.Count == 0) return null;
        int rank = terms.Sum(t => t.Pair.Rank);
        int padded = (rank + 7) / 8 * 8;
        var a = new float[(long)padded * cols];
        var b = new float[(long)rows * padded];
        int r0 = 0;
        foreach ((LoraPair p, float scale, int rowOffset) in terms)
        {
            if (p.In != cols || rowOffset + p.Out > rows) throw new ArgumentException($"A LoRA pair [{p.Out} x {p.Rank} x {p.In}] does not fit rows {rowOffset}.. of a {rows} x {cols} matrix.");
            Array.Copy(p.A, 0, a, (long)r0 * cols, (long)p.Rank * cols);
            for (int i = 0; i < p.Out; i++)
                for (int k = 0; k < p.Rank; k++)
                    b[(long)(rowOffset + i) * padded + r0 + k] = scale * p.B[(long)i * p.Rank + k];
            r0 += p.Rank;
        }
        return new DeviceLowRank(context, a, b, padded, rows, cols, maxTokens);
    }
}
