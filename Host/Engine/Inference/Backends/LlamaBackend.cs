using PeftHost.Llama;
using PeftHost.Llama.Sampling;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// The llama.cpp backend (LLamaSharp): the base GGUF memory-mapped once, each LoRA adapter loaded as
/// GGUF-LoRA beside it and applied unmerged with its scale through llama.cpp's adapter API; a request
/// switches the set without reloading anything. Float32 weights run the attention in float32
/// (<see cref="LlamaCppContextOptions.ExactAttention"/>), so logits match torch's. Sampling runs on the
/// CPU with the same processors as torch (<see cref="LogitsSampler"/>).
/// </summary>
public sealed class LlamaBackend : IInferenceBackend
{
    private readonly LlamaCppModel _model;
    private readonly LlamaCppContext _context;
    private readonly Dictionary<string, LlamaCppAdapter> _adapters;

    private LlamaBackend(LlamaCppModel model, LlamaCppContext context, ITextTokenizer? tokenizer, GgufArtifacts files, Dictionary<string, LlamaCppAdapter> adapters)
    {
        _model = model;
        _context = context;
        _adapters = adapters;
        Tokenizer = tokenizer;
        Files = files;
        Adapters = [.. files.Unmerged.Select(u => new AdapterScale(u.Adapter.Name, u.Adapter.Scale))];
        MergedAdapters = files.Merged;
        Description = $"llama.cpp ({Llama.Runtime.LlamaCppRuntime.LoadedBuild}), {model.Description}, {context.ContextSize} positions" +
            (Adapters.Count > 0 ? $", LoRA {string.Join(", ", Adapters.Select(a => a.Name))} unmerged" : "") +
            (MergedAdapters.Count > 0 ? $", {string.Join(", ", MergedAdapters.Select(a => a.Name))} merged" : "");
    }

    /// <summary>Prepares the GGUF files (<see cref="GgufArtifacts"/>) and loads them into llama.cpp.</summary>
    public static LlamaBackend Open(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ITextTokenizer? tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder);
        GgufArtifacts files = GgufArtifacts.Prepare(options);
        LlamaCppModel model = LlamaCppModel.Open(files.BaseGguf);
        try
        {
            var adapters = new Dictionary<string, LlamaCppAdapter>(StringComparer.Ordinal);
            foreach ((AdapterSpec spec, string path) in files.Unmerged) adapters[spec.Name] = model.LoadAdapter(path, spec.Name);
            int trained = model.TrainedContextLength > 0 ? model.TrainedContextLength : 2048;
            if (options.ContextSize > trained)
                throw new ArgumentException($"{options.ContextSize} positions were asked for (prompt + new tokens), more than the model's context of {trained} ({files.BaseGguf}: llama.context_length).");
            int size = options.ContextSize ?? Math.Min(trained, 2048);
            var context = new LlamaCppContext(model, new LlamaCppContextOptions { ContextSize = size, Threads = options.Threads });
            return new LlamaBackend(model, context, tokenizer, files, adapters);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public InferenceBackendKind Kind => InferenceBackendKind.Llama;

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public ITextTokenizer? Tokenizer { get; }

    /// <inheritdoc/>
    public int VocabSize => _model.VocabSize;

    /// <inheritdoc/>
    public int ContextSize => _context.ContextSize;

    /// <inheritdoc/>
    public IReadOnlyList<AdapterScale> Adapters { get; }

    /// <inheritdoc/>
    public IReadOnlyList<MergedAdapter> MergedAdapters { get; }

    /// <summary>The GGUF files this backend runs.</summary>
    public GgufArtifacts Files { get; }

    /// <summary>Bytes of weights llama.cpp holds (what a decode step reads).</summary>
    public long WeightBytes => (long)_model.SizeInBytes;

    /// <summary>The llama.cpp context (for benchmarks that drive it directly).</summary>
    public LlamaCppContext Context => _context;

    /// <inheritdoc/>
    public float[] Logits(IReadOnlyList<int> ids, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ModelInputValidator.TokenIds(ids, VocabSize, ContextSize);
        Select(adapters);
        return _context.ComputeLogits([.. ids]);
    }

    /// <inheritdoc/>
    public IEnumerable<int> Generate(IReadOnlyList<int> promptIds, GenerationOptions options, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ModelInputValidator.Generation(promptIds, options, VocabSize, ContextSize);
        if (!options.UseCache) throw new NotSupportedException("the llama backend always decodes with its KV cache (UseCache false needs --backend torch).");
        Select(adapters);
        var sampling = new SamplingOptions
        {
            MaxNewTokens = options.MaxNewTokens,
            DoSample = options.DoSample,
            Temperature = options.Temperature,
            TopK = options.TopK,
            TopP = options.TopP,
            RepetitionPenalty = options.RepetitionPenalty,
            Seed = options.Seed,
            StopIds = options.StopTokenIds.Select(i => (int)i).ToHashSet(),
        };
        return LlamaCppGenerator.Generate(_context, promptIds, sampling);
    }

    private void Select(IReadOnlyList<AdapterScale>? adapters)
    {
        IReadOnlyList<AdapterScale> selection = adapters ?? Adapters;
        var set = new List<(LlamaCppAdapter, float)>(selection.Count);
        foreach (AdapterScale a in selection)
        {
            if (!_adapters.TryGetValue(a.Name, out LlamaCppAdapter? adapter))
            {
                string merged = MergedAdapters.Any(m => m.Name == a.Name) ? $" ('{a.Name}' is merged into the base and always applies)" : "";
                throw new KeyNotFoundException($"adapter '{a.Name}' is not loaded unmerged{merged} (unmerged adapters: {string.Join(", ", _adapters.Keys)}).");
            }
            set.Add((adapter, (float)a.Scale));
        }
        _context.SetAdapters(set);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _context.Dispose();
        _model.Dispose();
    }
}
