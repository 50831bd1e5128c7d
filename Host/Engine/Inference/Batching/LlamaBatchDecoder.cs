using PeftHost.Engine.Export;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using PeftHost.Llama;
using PeftHost.Llama.Sampling;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference.Batching;

/// <summary>
/// The llama.cpp engine behind the scheduler: one context decodes one sequence at a time, and llama.cpp sets
/// adapters per context, so its rows never mix adapters (<see cref="MixesAdapters"/> false: the scheduler
/// takes requests of the adapter in use first, switching adapters as rarely as it can). LoRA adapters are
/// applied unmerged as GGUF-LoRA (exported into the GGUF cache on first use, also when loaded at run time);
/// an adapter llama.cpp could only run merged into the base is refused, since the base is shared by every request.
/// </summary>
public sealed class LlamaBatchDecoder : IBatchDecoder
{
    private readonly InferenceBackendOptions _options;
    private readonly GgufArtifacts _files;
    private readonly LlamaCppModel _model;
    private readonly LlamaCppContext _context;
    private readonly Dictionary<string, LlamaCppAdapter> _adapters;
    private readonly List<string> _order;
    private readonly List<DecodeSequence> _running = [];

    private LlamaBatchDecoder(InferenceBackendOptions options, GgufArtifacts files, LlamaCppModel model, LlamaCppContext context, ITextTokenizer? tokenizer, Dictionary<string, LlamaCppAdapter> adapters, List<string> order)
    {
        _options = options;
        _files = files;
        _model = model;
        _context = context;
        _adapters = adapters;
        _order = order;
        Tokenizer = tokenizer;
        Description = $"llama.cpp, {model.Description}, {context.ContextSize} positions, one sequence at a time, requests grouped by adapter";
    }

    /// <summary>Prepares the GGUF files (<see cref="GgufArtifacts"/>) and loads them into llama.cpp.</summary>
    /// <exception cref="NotSupportedException">An adapter can only run merged into the base (not LoRA, DoRA, modules_to_save, ...).</exception>
    public static LlamaBatchDecoder Open(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (AdapterSpec a in options.Adapters) RefuseMerged(options, a.Name, a.Folder);
        ITextTokenizer? tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder);
        GgufArtifacts files = GgufArtifacts.Prepare(options);
        LlamaCppModel model = LlamaCppModel.Open(files.BaseGguf);
        try
        {
            var adapters = new Dictionary<string, LlamaCppAdapter>(StringComparer.Ordinal);
            foreach ((AdapterSpec spec, string path) in files.Unmerged) adapters[spec.Name] = model.LoadAdapter(path, spec.Name);
            int size = options.ContextSize ?? Math.Min(model.TrainedContextLength > 0 ? model.TrainedContextLength : 2048, 2048);
            var context = new LlamaCppContext(model, new LlamaCppContextOptions { ContextSize = size, Threads = options.Threads });
            return new LlamaBatchDecoder(options, files, model, context, tokenizer, adapters, [.. options.Adapters.Select(a => a.Name)]);
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
    public int MaxRows => 1;

    /// <inheritdoc/>
    public bool MixesAdapters => false;

    /// <inheritdoc/>
    public IReadOnlyList<string> Adapters => _order;

    /// <inheritdoc/>
    public IReadOnlyList<DecodeSequence> Running => _running;

    /// <inheritdoc/>
    public int ExtraPositions(string? adapter)
    {
        if (adapter is not null && !_adapters.ContainsKey(adapter)) throw new KeyNotFoundException($"adapter '{adapter}' is not loaded.");
        return 0;
    }

    /// <inheritdoc/>
    public DecodeSequence Start(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (_running.Count > 0) throw new InvalidOperationException("The llama.cpp context decodes one sequence at a time.");
        if (prompt.Count == 0) throw new ArgumentException("The prompt is empty.", nameof(prompt));
        if (prompt.Count >= ContextSize) throw new ArgumentException($"{prompt.Count} prompt tokens exceed the context of {ContextSize} positions.", nameof(prompt));
        if (adapter is null) _context.SetAdapters([]);
        else if (_adapters.TryGetValue(adapter, out LlamaCppAdapter? a)) _context.SetAdapters([(a, 1f)]);
        else throw new KeyNotFoundException($"adapter '{adapter}' is not loaded.");
        var sampler = new LogitsSampler(new SamplingOptions
        {
            MaxNewTokens = options.MaxNewTokens,
            DoSample = options.DoSample,
            Temperature = options.Temperature,
            TopK = options.TopK,
            TopP = options.TopP,
            RepetitionPenalty = options.RepetitionPenalty,
            Seed = options.Seed,
        }, prompt);
        var sequence = new DecodeSequence(prompt, adapter, options) { State = sampler, Position = prompt.Count };
        sequence.Add(sampler.Next(_context.Prefill([.. prompt])));
        _running.Add(sequence);
        return sequence;
    }

    /// <inheritdoc/>
    public void Step()
    {
        foreach (DecodeSequence s in _running)
        {
            var sampler = (LogitsSampler)s.State!;
            s.Add(sampler.Next(_context.Decode(s.LastToken, (int)s.Position)));
            s.Position++;
        }
    }

    /// <inheritdoc/>
    public void Finish(DecodeSequence sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        if (_running.Remove(sequence)) sequence.ReleaseState();
    }

    /// <inheritdoc/>
    public void LoadAdapter(string name, string folder)
    {
        Abstractions.Tuning.AdapterNames.EnsureValid(name);
        if (_adapters.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' already exists.", nameof(name));
        _adapters[name] = Load(name, folder);
        _order.Add(name);
    }

    /// <inheritdoc/>
    public void ReplaceAdapter(string name, string folder)
    {
        LlamaCppAdapter old = Idle(name);
        LlamaCppAdapter loaded = Load(name, folder);
        _context.SetAdapters([]);
        _adapters[name] = loaded;
        _model.UnloadAdapter(old);
    }

    /// <inheritdoc/>
    public void UnloadAdapter(string name)
    {
        LlamaCppAdapter old = Idle(name);
        _context.SetAdapters([]);
        _adapters.Remove(name);
        _order.Remove(name);
        _model.UnloadAdapter(old);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (DecodeSequence s in _running) s.ReleaseState();
        _running.Clear();
        _context.Dispose();
        _model.Dispose();
    }

    private LlamaCppAdapter Idle(string name)
    {
        if (!_adapters.TryGetValue(name, out LlamaCppAdapter? adapter)) throw new KeyNotFoundException($"adapter '{name}' is not loaded.");
        if (_running.Any(s => s.Adapter == name)) throw new InvalidOperationException($"adapter '{name}' is serving a running sequence: wait for it to finish.");
        return adapter;
    }

    // The adapter as GGUF-LoRA laid out for the loaded base (exported into the cache on first use) loaded beside it.
    private LlamaCppAdapter Load(string name, string folder)
    {
        RefuseMerged(_options, name, folder);
        return _model.LoadAdapter(_files.LoraFor(_options, folder), name);
    }

    private static void RefuseMerged(InferenceBackendOptions options, string name, string folder)
    {
        if (GgufLoraExporter.Refusal(options.ModelFolder, folder, options.PluginsFolder) is string reason)
            throw new NotSupportedException($"adapter '{name}': the llama backend serves LoRA adapters unmerged only, and this one cannot be ({reason}); serve it with --backend torch.");
    }
}
