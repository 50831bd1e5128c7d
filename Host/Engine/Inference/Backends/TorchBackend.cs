using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference.Backends;

/// <summary>
/// The TorchSharp backend: the model folder loaded with every adapter through its plugin
/// (<see cref="AdaptedModel"/>), all unmerged; a request selects which adapters are active
/// (PeftModel.SetActiveAdapters). Adapters run at their trained scale: another scale is refused.
/// </summary>
public sealed class TorchBackend : IInferenceBackend
{
    private readonly AdaptedModel _loaded;
    private readonly ICausalLM _lm;
    private readonly Device _device;
    private string[] _active;

    private TorchBackend(AdaptedModel loaded, ICausalLM lm, ITextTokenizer? tokenizer, Device device, IReadOnlyList<AdapterSpec> adapters, BitsAndBytesConfig? quantization)
    {
        _loaded = loaded;
        _lm = lm;
        _device = device;
        Tokenizer = tokenizer;
        Adapters = [.. adapters.Select(a => new AdapterScale(a.Name, 1.0))];
        _active = [.. adapters.Select(a => a.Name)];
        ContextSize = loaded.Config.MaxPositions;
        Description = $"torch {device.type.ToString().ToLowerInvariant()}, {loaded.Model.parameters().First().dtype.ToString().ToLowerInvariant()}" +
            (quantization is null ? "" : $", {quantization} base") +
            (adapters.Count > 0 ? $", adapters {string.Join(", ", adapters.Select(a => a.Name))} unmerged" : "");
    }

    /// <summary>Loads <see cref="InferenceBackendOptions.ModelFolder"/> with its adapters.</summary>
    /// <exception cref="NotSupportedException">The model is not a causal LM, or an adapter has a scale other than 1.</exception>
    public static TorchBackend Open(InferenceBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Adapters.FirstOrDefault(a => a.Scale != 1.0) is AdapterSpec scaled)
            throw new NotSupportedException($"adapter '{scaled.Name}': the torch backend applies adapters at their trained scale (1); scale {scaled.Scale} needs --backend llama or vulkan.");
        ITextTokenizer? tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder);
        Device device = options.Device ?? CPU;
        AdaptedModel loaded = AdaptedModel.Load(options.ModelFolder, options.Adapters, options.PluginsFolder, options.DType, device, options.Quantization);
        if (loaded.Model is not ICausalLM lm)
        {
            string name = loaded.Model.GetType().Name;
            loaded.Dispose();
            throw new NotSupportedException($"{name} is not a causal language model: the inference backends run causal LMs (logits of a classifier: pefthost logits --backend torch).");
        }
        return new TorchBackend(loaded, lm, tokenizer, device, options.Adapters, options.Quantization);
    }

    /// <inheritdoc/>
    public InferenceBackendKind Kind => InferenceBackendKind.Torch;

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public ITextTokenizer? Tokenizer { get; }

    /// <inheritdoc/>
    public int VocabSize => _loaded.Config.VocabSize;

    /// <inheritdoc/>
    public int ContextSize { get; }

    /// <inheritdoc/>
    public IReadOnlyList<AdapterScale> Adapters { get; }

    /// <inheritdoc/>
    public IReadOnlyList<MergedAdapter> MergedAdapters => [];

    /// <summary>The loaded model (and its PEFT model), for callers that need torch itself.</summary>
    public AdaptedModel Model => _loaded;

    /// <inheritdoc/>
    public float[] Logits(IReadOnlyList<int> ids, IReadOnlyList<AdapterScale>? adapters = null)
    {
        ModelInputValidator.TokenIds(ids, VocabSize, ContextSize);
        using IDisposable? off = Select(adapters);
        using Tensor input = torch.tensor(ids.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: _device).unsqueeze(0);
        using Tensor logits = _loaded.Run(() =>
        {
            using (torch.no_grad())
                return _loaded.Peft is { } peft ? peft.CausalLMForward(input) : _lm.Forward(input);
        });
        // Prompt tuning prepends virtual tokens: the ids' own positions are the last ones.
        using Tensor own = logits[0].narrow(0, logits.shape[1] - ids.Count, ids.Count).to(ScalarType.Float32).cpu().contiguous();
        return own.data<float>().ToArray();
    }

    /// <inheritdoc/>
    public IEnumerable<int> Generate(IReadOnlyList<int> promptIds, GenerationOptions options, IReadOnlyList<AdapterScale>? adapters = null)
    {
        // Checked now, not at the first token the stream is asked for.
        ModelInputValidator.Generation(promptIds, options, VocabSize, ContextSize);
        return Run(promptIds, options, adapters);
    }

    private IEnumerable<int> Run(IReadOnlyList<int> promptIds, GenerationOptions options, IReadOnlyList<AdapterScale>? adapters)
    {
        using IDisposable? off = Select(adapters);
        using IEnumerator<long> tokens = TokenGenerator.Generate(_lm, [.. promptIds.Select(i => (long)i)], options).GetEnumerator();
        // Each step runs under the PEFT model's lock, so a plugin reload waits for the token in flight, not the whole stream.
        while (_loaded.Run(tokens.MoveNext)) yield return (int)tokens.Current;
    }

    // Activates the selection; returns the scope that disables adapters when none is selected.
    private IDisposable? Select(IReadOnlyList<AdapterScale>? adapters)
    {
        if (_loaded.Peft is not { } peft)
        {
            if (adapters is { Count: > 0 }) throw new KeyNotFoundException($"adapter '{adapters[0].Name}' is not loaded (no adapters were given).");
            return null;
        }
        IReadOnlyList<AdapterScale> selection = adapters ?? Adapters;
        foreach (AdapterScale a in selection)
        {
            if (!Adapters.Any(x => x.Name == a.Name))
                throw new KeyNotFoundException($"adapter '{a.Name}' is not loaded (adapters: {string.Join(", ", Adapters.Select(x => x.Name))}).");
            if (a.Scale != 1.0)
                throw new NotSupportedException($"adapter '{a.Name}': the torch backend applies adapters at their trained scale (1), not {a.Scale}.");
        }
        if (selection.Count == 0) return peft.DisableAdapter();
        string[] names = [.. selection.Select(a => a.Name)];
        if (!names.SequenceEqual(_active))
        {
            peft.SetActiveAdapters(names);
            _active = names;
        }
        return null;
    }

    /// <inheritdoc/>
    public void Dispose() => _loaded.Dispose();
}
