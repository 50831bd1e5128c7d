using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.PromptTuning;

/// <summary>
/// A prompt-learning method applied to one model (the prompt side of PEFT's <c>PeftModel</c>): one
/// prompt encoder per adapter, nothing injected into the model. One adapter is active at a time.
/// </summary>
/// <remarks>
/// State is PEFT's: one tensor, <c>prompt_embeddings</c>, the encoder's output for the virtual
/// tokens. A reparameterised encoder (prefix projection, p-tuning's MLP or LSTM) is collapsed into
/// it on export, as PEFT does; an imported adapter holds that tensor as its embedding (PEFT's
/// inference form), which stays trainable unless the config is in inference mode.
/// </remarks>
public sealed class PromptLearningModel : IPromptLearningModel
{
    /// <summary>The key PEFT saves a prompt-learning adapter under.</summary>
    public const string PromptEmbeddingsKey = "prompt_embeddings";

    /// <summary>The name of PEFT's per-adapter dictionary of prompt encoders on its <c>PeftModel</c>.</summary>
    public const string PromptEncoderName = "prompt_encoder";

    private readonly string _peftType;
    private readonly Func<JsonObject, PromptLearningConfig> _parse;
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (PromptLearningConfig Config, VirtualTokenEncoder Encoder)> _adapters = new(StringComparer.Ordinal);
    private IReadOnlyList<string> _active = [];

    internal PromptLearningModel(ModelSurgeon model, TunerContext context, string peftType, Func<JsonObject, PromptLearningConfig> parse)
    {
        Model = model;
        Context = context;
        _peftType = peftType;
        _parse = parse;
        Kind = peftType == PrefixTuningTuner.PeftTypeName ? PromptKind.PastKeyValues : PromptKind.InputEmbeddings;
    }

    /// <summary>The model the prompts are for (never modified).</summary>
    public ModelSurgeon Model { get; }

    /// <summary>The host's context (logger).</summary>
    public TunerContext Context { get; }

    /// <inheritdoc />
    public PromptKind Kind { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Adapters => _order;

    /// <inheritdoc />
    public IReadOnlyList<string> ActiveAdapters => _active;

    /// <inheritdoc />
    public bool Enabled { get; set; } = true;

    /// <summary>The config of an adapter.</summary>
    public PromptLearningConfig GetConfig(string adapter) => Get(adapter).Config;

    /// <summary>
    /// An adapter's prompt encoder, for training: its parameters have PEFT's names
    /// (<c>embedding.weight</c>, <c>transform.0.weight</c>, <c>mlp_head.0.weight</c>, <c>lstm_head.weight_ih_l0</c>, ...).
    /// </summary>
    public nn.Module PromptEncoder(string adapter) => Get(adapter).Encoder;

    /// <inheritdoc />
    public int NumVirtualTokens(string adapter) => Get(adapter).Config.NumVirtualTokens;

    /// <summary>PEFT's prompt-encoder parameters, which live outside the model: <c>prompt_encoder.&lt;adapter&gt;.embedding.weight</c>, ...</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() =>
        _order.SelectMany(adapter => _adapters[adapter].Encoder.named_parameters().Select(p => ($"{PromptEncoderName}.{adapter}.{p.name}", p.parameter))).ToList();

    /// <inheritdoc />
    public void AddAdapter(string name, TunerConfig config)
    {
        PromptLearningConfig typed = CheckNew(name, config);
        // PEFT skips the text initialisation in inference mode (the weights are loaded next).
        using Tensor? text = typed is PromptTuningConfig { PromptTuningInit: "TEXT" } prompt && !typed.InferenceMode ? TextEmbeddings(name, prompt) : null;
        Add(name, typed, typed.CreateEncoder(direct: typed.InferenceMode), source: text);
    }

    // PEFT's PromptEmbedding with TEXT init: the base's input embeddings of the text's ids (cut or repeated to the
    // virtual tokens), in float32. PEFT loads tokenizer_name_or_path; the host gives the model folder's tokenizer.
    private Tensor TextEmbeddings(string adapter, PromptTuningConfig config)
    {
        if (Context.Tokenize is null || Context.EmbedTokens is null)
            throw new TunerConfigException($"Adapter '{adapter}': adapter config field 'prompt_tuning_init': \"TEXT\" initialises the prompt from the embeddings of a tokenized text, " +
                $"and the host gave {(Context.Tokenize is null ? "no tokenizer" : "no input embeddings")} (give the base model's folder with its tokenizer, or use \"RANDOM\").");
        if (!string.IsNullOrEmpty(config.TokenizerNameOrPath))
            Context.Logger.LogInformation("Prompt tuning '{Adapter}': TEXT initialisation with the base model's tokenizer (the config names '{Tokenizer}').", adapter, config.TokenizerNameOrPath);
        long[] ids = config.InitTokenIds(Context.Tokenize(config.PromptTuningInitText!), config.EncoderTokens);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor embeddings = Context.EmbedTokens(tensor(ids, ScalarType.Int64, ModelDevice()).unsqueeze(0))[0].to(ScalarType.Float32).clone();
        return scope.MoveToOuter(embeddings);
    }

    /// <inheritdoc />
    public void ImportAdapter(AdapterState state)
    {
        PromptLearningConfig config = CheckNew(state.Name, _parse(state.Config));
        var unexpected = state.Tensors.Keys.Where(k => k != PromptEmbeddingsKey).ToList();
        if (!state.Tensors.TryGetValue(PromptEmbeddingsKey, out Tensor? source) || unexpected.Count > 0)
            throw new InvalidDataException($"Adapter '{state.Name}': a {_peftType} adapter has exactly one tensor, '{PromptEmbeddingsKey}'" +
                $"{(source is null ? "; it is missing" : "")}{(unexpected.Count > 0 ? $"; unexpected: {string.Join(", ", unexpected.Take(8))}" : "")}.");
        long[] expected = config.SavedShape;
        if (!source.shape.SequenceEqual(expected))
            throw new InvalidDataException($"Adapter '{state.Name}': tensor '{PromptEmbeddingsKey}' has shape [{string.Join(", ", source.shape)}], " +
                $"the config (num_virtual_tokens {config.NumVirtualTokens}, token_dim {config.TokenDim}, ...) expects [{string.Join(", ", expected)}].");
        if (!source.is_floating_point())
            throw new InvalidDataException($"Adapter '{state.Name}': tensor '{PromptEmbeddingsKey}' has dtype {source.dtype}, expected a floating-point type.");
        Add(state.Name, config, config.CreateEncoder(direct: true), source);
    }

    /// <inheritdoc />
    public AdapterState ExportAdapter(string name)
    {
        (PromptLearningConfig config, VirtualTokenEncoder encoder) = Get(name);
        Tensor embeddings;
        bool training = encoder.training;
        encoder.eval(); // the saved prompt is deterministic: no LSTM dropout
        try
        {
            using (no_grad())
            using (var scope = NewDisposeScope())
            {
                Tensor output = encoder.IsDirect ? encoder.EmbeddingWeight : encoder.forward(Indices(config, encoder)).squeeze(0);
                embeddings = scope.MoveToOuter(output.detach().to(CPU).clone());
            }
        }
        finally
        {
            encoder.train(training);
        }
        return new AdapterState(name, config.ToJson(), new Dictionary<string, Tensor>(StringComparer.Ordinal) { [PromptEmbeddingsKey] = embeddings });
    }

    /// <inheritdoc />
    public void DeleteAdapter(string name)
    {
        if (!_adapters.Remove(name, out var entry)) throw new KeyNotFoundException($"No adapter named '{name}'.");
        _order.Remove(name);
        entry.Encoder.Dispose();
        if (_active.Contains(name)) _active = [];
    }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">More than one adapter: prompt learning uses one at a time, as in PEFT.</exception>
    public void SetActiveAdapters(IReadOnlyList<string> names)
    {
        if (names.Count > 1)
            throw new ArgumentException($"{_peftType} uses one adapter at a time; got {names.Count} ({string.Join(", ", names)}).", nameof(names));
        foreach (string n in names)
            if (!_adapters.ContainsKey(n)) throw new KeyNotFoundException($"No adapter named '{n}' (adapters: {string.Join(", ", _order)}).");
        _active = [.. names];
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">The tuner is disabled or no adapter is active.</exception>
    public Tensor GetPrompt(long batchSize)
    {
        if (!Enabled) throw new InvalidOperationException($"{_peftType} is disabled: the forward pass must use the base model alone, with no prompt.");
        if (_active.Count == 0) throw new InvalidOperationException($"{_peftType}: no adapter is active (adapters: {string.Join(", ", _order)}).");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "The batch size must be positive.");
        (PromptLearningConfig config, VirtualTokenEncoder encoder) = _adapters[_active[0]];
        Device device = ModelDevice();
        Tensor weight = encoder.EmbeddingWeight;
        if (weight.device_type != device.type || (device.type != DeviceType.CPU && weight.device_index != device.index))
            encoder.to(device); // the model was moved since the adapter was added

        using var scope = NewDisposeScope();
        // One sample through the encoder, repeated over the batch (as PEFT does for prompts).
        Tensor one = encoder.IsDirect ? encoder.EmbeddingWeight.unsqueeze(0) : encoder.forward(Indices(config, encoder));
        Tensor prompt = one.to(ModelDtype()).repeat(batchSize, 1, 1);
        if (config is PrefixTuningConfig prefix)
        {
            // [batch, tokens, layers * 2 * dim] → [layers * 2 * submodules, batch, heads, tokens, head_dim], PEFT's get_prompt.
            int heads = prefix.NumAttentionHeads!.Value;
            Tensor kv = prompt.view(batchSize, prefix.NumVirtualTokens, prefix.NumLayers!.Value * 2, heads, prefix.TokenDim / heads);
            if (prefix.NumTransformerSubmodules == 2) kv = cat([kv, kv], dim: 2);
            prompt = kv.permute(2, 0, 3, 1, 4);
        }
        return scope.MoveToOuter(prompt);
    }

    /// <inheritdoc />
    public bool CanMerge => false;

    /// <inheritdoc />
    public IReadOnlyList<string> MergedAdapters => [];

    /// <inheritdoc />
    public void Merge(IReadOnlyList<string> adapters, bool safeMerge) =>
        throw new NotSupportedException($"{_peftType} adapters cannot be merged: prompt learning adds virtual tokens to the input and changes no weight of the model.");

    /// <inheritdoc />
    public void Unmerge() { } // nothing is ever merged

    /// <inheritdoc />
    public void Detach()
    {
        foreach ((_, VirtualTokenEncoder encoder) in _adapters.Values) encoder.Dispose();
        _adapters.Clear();
        _order.Clear();
        _active = [];
    }

    /// <summary>Frees every prompt encoder (the model was never modified).</summary>
    public void Dispose()
    {
        Detach();
        GC.SuppressFinalize(this);
    }

    private (PromptLearningConfig Config, VirtualTokenEncoder Encoder) Get(string adapter) =>
        _adapters.TryGetValue(adapter, out var entry) ? entry : throw new KeyNotFoundException($"No adapter named '{adapter}' (adapters: {string.Join(", ", _order)}).");

    private PromptLearningConfig CheckNew(string name, TunerConfig config)
    {
        if (config is not PromptLearningConfig typed || config.PeftType != _peftType)
            throw new TunerConfigException($"Adapter '{name}': a {config.PeftType} config was given to the {_peftType} tuner.");
        AdapterNames.EnsureValid(name);
        if (_adapters.ContainsKey(name)) throw new ArgumentException($"An adapter named '{name}' already exists.", nameof(name));
        return typed;
    }

    // Builds the encoder on the model's device, fills it from source when importing, then registers it: all or nothing.
    private void Add(string name, PromptLearningConfig config, VirtualTokenEncoder encoder, Tensor? source)
    {
        try
        {
            encoder.to(ModelDevice());
            if (source is not null)
            {
                using (no_grad()) encoder.EmbeddingWeight.copy_(source);
            }
            if (config.InferenceMode)
                foreach (Parameter p in encoder.parameters()) p.requires_grad = false;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
        _adapters[name] = (config, encoder);
        _order.Add(name);
        if (_active.Count == 0) _active = [name];
    }

    private Tensor Indices(PromptLearningConfig config, VirtualTokenEncoder encoder) =>
        arange(config.EncoderTokens, dtype: ScalarType.Int64, device: encoder.EmbeddingWeight.device).unsqueeze(0);

    private Device ModelDevice() => Model.Root.parameters().FirstOrDefault()?.device ?? CPU;

    private ScalarType ModelDtype() =>
        Model.Root.parameters().FirstOrDefault(p => p.is_floating_point())?.dtype ?? ScalarType.Float32;
}
