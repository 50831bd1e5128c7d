using System.Runtime.InteropServices;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Kernels;

/// <summary>
/// Picks the next token on the device from one row of logits: greedy (k = 1: argmax, lowest index
/// on ties) or top-k with temperature, using a uniform number drawn on the host. Writes ids[0] (int32).
/// </summary>
public sealed class SampleKernel
{
    /// <summary>The largest k.</summary>
    public const int MaxK = 64;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Push(uint N, uint Offset, uint K, float InvTemperature, float U);

    private readonly VulkanComputePipeline _pipeline;

    /// <summary>Creates (or reuses) the pipeline.</summary>
    public SampleKernel(VulkanContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        uint wg = Math.Min(256u, context.Device.MaxWorkgroupInvocations);
        _pipeline = context.GetPipeline(new VulkanPipelineDescription("sample_topk", 2, 0b10, 20, [wg, MaxK]));
    }

    /// <summary>Records the choice among logits[offset .. offset + n).</summary>
    /// <param name="recorder">The recorder.</param>
    /// <param name="logits">Float32 logits.</param>
    /// <param name="ids">Receives the id at element 0.</param>
    /// <param name="n">Vocabulary size.</param>
    /// <param name="offset">Element offset of the row.</param>
    /// <param name="topK">1 for greedy, else the candidates kept (at most <see cref="MaxK"/>).</param>
    /// <param name="temperature">Softmax temperature (ignored when greedy).</param>
    /// <param name="uniform">A uniform number in [0, 1).</param>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer logits, VulkanBuffer ids, int n, int offset, int topK, float temperature, float uniform)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        if (topK < 1 || topK > MaxK || topK > n) throw new ArgumentOutOfRangeException(nameof(topK), topK, $"top-k between 1 and {Math.Min(MaxK, n)}.");
        if (topK > 1 && !(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Sampling needs a positive temperature.");
        VulkanGrid.Require(logits, (ulong)(offset + n) * 4, "logits", "sample_topk");
        VulkanGrid.Require(ids, 4, "ids", "sample_topk");
        recorder.Dispatch(_pipeline, [logits, ids], new Push((uint)n, (uint)offset, (uint)topK, topK > 1 ? 1f / temperature : 1f, uniform), 1);
    }
}
