using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Generation;

/// <summary>Generation with <see cref="LlamaDeviceModel"/>: prefill, then one command buffer per token, sampling on the device.</summary>
public sealed class VulkanLlamaGenerator : ITokenStreamGenerator
{
    private readonly VulkanContext _context;
    private readonly bool _ownsContext;

    /// <summary>Loads <paramref name="ggufPath"/> on <paramref name="context"/> (or on a new default context, then owned).</summary>
    public VulkanLlamaGenerator(string ggufPath, VulkanContext? context = null, int? contextSize = null)
    {
        _ownsContext = context is null;
        _context = context ?? VulkanContext.Create();
        try
        {
            using GgufFile file = GgufFile.Open(ggufPath);
            Model = new LlamaDeviceModel(_context, file, contextSize);
        }
        catch
        {
            if (_ownsContext) _context.Dispose();
            throw;
        }
    }

    /// <summary>The device model.</summary>
    public LlamaDeviceModel Model { get; }

    /// <inheritdoc/>
    public string Description => $"vulkan {_context.Device.Name}, {GgmlTypeTraits.Name(Model.WeightType)}";

    /// <inheritdoc/>
    public IEnumerable<int> Generate(IReadOnlyList<int> promptIds, TokenSampling sampling)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        ArgumentNullException.ThrowIfNull(sampling);
        if (promptIds.Count + sampling.MaxNewTokens > Model.Capacity)
        {
            throw new ArgumentException($"{promptIds.Count} prompt tokens + {sampling.MaxNewTokens} new tokens exceed the KV cache capacity {Model.Capacity}.");
        }
        return Run([.. promptIds], sampling);
    }

    private IEnumerable<int> Run(int[] prompt, TokenSampling s)
    {
        if (s.MaxNewTokens <= 0) yield break;
        var rng = new Random(s.Seed);
        int token = Model.Prefill(prompt, s.TopK, s.Temperature, rng.NextSingle());
        yield return token;
        for (int i = 1; i < s.MaxNewTokens && !s.StopIds.Contains(token); i++)
        {
            token = Model.DecodeStep(prompt.Length + i - 1, s.TopK, s.Temperature, rng.NextSingle());
            yield return token;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Model.Dispose();
        if (_ownsContext) _context.Dispose();
    }
}
