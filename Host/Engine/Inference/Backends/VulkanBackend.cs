using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;
using PeftHost.Vulkan.Llama;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// The Vulkan backend: the base GGUF uploaded to the device once (<see cref="LlamaDeviceModel"/>),
/// LoRA adapters loaded as GGUF-LoRA beside it and applied unmerged with their scales (the low-rank
/// terms rebuilt on the device when a request changes the set). Samples on the device: greedy, or
/// top-k with temperature; top-p and a repetition penalty are refused.
/// </summary>
public sealed class VulkanBackend : IInferenceBackend
{
    private readonly VulkanContext _context;
    private readonly LlamaDeviceModel _model;

    private VulkanBackend(VulkanContext context, LlamaDeviceModel model, ITextTokenizer? tokenizer, GgufArtifacts files)
    {
        _context = context;
        _model = model;
        Tokenizer = tokenizer;
        Files = files;
        Adapters = [.. files.Unmerged.Select(u => new AdapterScale(u.Adapter.Name, u.Adapter.Scale))];
        MergedAdapters = files.Merged;
        Description = $"vulkan {context.Device.Name}, {GgmlTypeTraits.Name(model.WeightType)}, {model.Capacity} positions" +
            (Adapters.Count > 0 ? $", LoRA {string.Join(", ", Adapters.Select(a => a.Name))} unmerged" : "") +
            (MergedAdapters.Count > 0 ? $", {string.Join(", ", MergedAdapters.Select(a => a.Name))} merged" : "");
    }

    /// <summary>Prepares the GGUF files (<see cref="GgufArtifacts"/>) and uploads them to the default Vulkan device.</summary>
    public static VulkanBackend Open(InferenceBackendOptions options, VulkanContextOptions? device = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ITextTokenizer? tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder);
        GgufArtifacts files = GgufArtifacts.Prepare(options);
        VulkanContext context = VulkanContext.Create(device);
        LlamaDeviceModel? model = null;
        try
        {
            using (GgufFile file = GgufFile.Open(files.BaseGguf))
            {
                int trained = LlamaHyperParameters.Read(file).ContextLength;
                if (options.ContextSize > trained)
                    throw new ArgumentException($"{options.ContextSize} positions were asked for (prompt + new tokens), more than the model's context of {trained} ({files.BaseGguf}: llama.context_length).");
                model = new LlamaDeviceModel(context, file, options.ContextSize);
            }
            foreach ((AdapterSpec spec, string path) in files.Unmerged)
            {
                using GgufFile lora = GgufFile.Open(path);
                model.LoadAdapter(spec.Name, lora);
            }
            return new VulkanBackend(context, model, tokenizer, files);
        }
        catch
        {
            model?.Dispose();
            context.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public InferenceBackendKind Kind => InferenceBackendKind.Vulkan;

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public ITextTokenizer? Tokenizer { get; }

    /// <inheritdoc/>
    public int VocabSize => _model.Parameters.VocabSize;

    /// <inheritdoc/>
    public int ContextSize => _model.Capacity;

    /// <inheritdoc/>
    public IReadOnlyList<AdapterScale> Adapters { get; }

    /// <inheritdoc/>
    public IReadOnlyList<MergedAdapter> MergedAdapters { get; }

    /// <summary>The GGUF files this backend runs.</summary>
    public GgufArtifacts Files { get; }

    /// <summary>The device model (for benchmarks: dispatch counts, weight bytes).</summary>
    public LlamaDeviceModel Model => _model;

    /// <inheritdoc/>
    public float[] Logits(IReadOnlyList<int> ids, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ModelInputValidator.TokenIds(ids, VocabSize, ContextSize);
        Select(adapters);
        return _model.ComputeLogits([.. ids]);
    }

    /// <inheritdoc/>
    public IEnumerable<int> Generate(IReadOnlyList<int> promptIds, GenerationOptions options, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ModelInputValidator.Generation(promptIds, options, VocabSize, ContextSize);
        if (options.TopP < 1 || options.RepetitionPenalty != 1)
            throw new NotSupportedException("the vulkan backend samples greedily or with top-k and temperature; --top-p and --repetition-penalty need --backend torch or llama.");
        Select(adapters);
        return Run([.. promptIds], options);
    }

    private IEnumerable<int> Run(int[] prompt, GenerationOptions o)
    {
        if (o.MaxNewTokens <= 0) yield break;
        int topK = o.DoSample ? (o.TopK > 0 ? Math.Min(o.TopK, VocabSize) : VocabSize) : 1;
        float temperature = (float)o.Temperature;
        var rng = new Random(unchecked((int)(o.Seed ?? Environment.TickCount64)));
        int token = _model.Prefill(prompt, topK, temperature, rng.NextSingle());
        yield return token;
        for (int i = 1; i < o.MaxNewTokens && !o.StopTokenIds.Contains(token); i++)
        {
            token = _model.DecodeStep(prompt.Length + i - 1, topK, temperature, rng.NextSingle());
            yield return token;
        }
    }

    private void Select(IReadOnlyList<AdapterScale>? adapters)
    {
        IReadOnlyList<AdapterScale> selection = adapters ?? Adapters;
        foreach (AdapterScale a in selection)
        {
            if (!Adapters.Any(x => x.Name == a.Name))
            {
                string merged = MergedAdapters.Any(m => m.Name == a.Name) ? $" ('{a.Name}' is merged into the base and always applies)" : "";
                throw new KeyNotFoundException($"adapter '{a.Name}' is not loaded unmerged{merged} (unmerged adapters: {string.Join(", ", Adapters.Select(x => x.Name))}).");
            }
        }
        _model.SetAdapters([.. selection.Select(a => (a.Name, (float)a.Scale))]);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _model.Dispose();
        _context.Dispose();
    }
}
