using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Serving;

/// <summary>
/// The tiny Llama (byte-level tokenizer, a one-line chat template) and adapters of several methods made for it,
/// saved under one adapter root (their targets do not overlap across methods: one module holds one method's layer), with a plugins folder of its own (so a reload can replace a plugin there); and
/// the reference: the same folders loaded into another model instance and run one request at a time through the
/// single-sequence paths (TokenGenerator with the KV cache; for prompt learning the full forward every step),
/// which share no code with the server's batching.
/// </summary>
internal sealed class ServingModels : IDisposable
{
    public const string Template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}";
    private readonly ScratchFolder _dir = new();
    private readonly nn.Module _referenceModel;
    private readonly PeftModel _reference;
    private readonly PluginCatalog _referenceCatalog;

    public ServingModels()
    {
        Model = Path.Combine(_dir.Path, "tiny-llama");
        AdapterRoot = Path.Combine(_dir.Path, "adapters");
        Plugins = Path.Combine(_dir.Path, "plugins");
        foreach (string id in new[] { "lora", "ia3", "prompt-tuning" }) PluginDirs.Copy(Path.Combine(PluginDirs.Installed, id), Path.Combine(Plugins, id));
        ModelPresets.Write("llama", "tiny", Model, seed: 7);
        string config = Path.Combine(Model, "tokenizer_config.json");
        JsonObject json = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        json["chat_template"] = Template;
        File.WriteAllText(config, json.ToJsonString());
        Tokenizer = TokenizerLoader.FromDirectory(Model);

        _referenceCatalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        _referenceCatalog.Scan();
        (_, _referenceModel) = ModelFactory.Load(Model);
        _reference = new PeftModel(_referenceModel, _referenceCatalog);
        Write("sql", Lora(2, "q_proj", "v_proj"), seed: 11);
        Write("sql-v2", Lora(2, "q_proj", "v_proj"), seed: 12);
        Write("chat", Lora(4, "q_proj", "k_proj", "v_proj", "o_proj"), seed: 13);
        Write("chat-r8", Lora(8, "q_proj", "v_proj", "gate_proj"), seed: 14);
        Write("ia3", new JsonObject { ["peft_type"] = "IA3", ["task_type"] = "CAUSAL_LM", ["target_modules"] = new JsonArray("up_proj", "down_proj"), ["feedforward_modules"] = new JsonArray("down_proj"), ["init_ia3_weights"] = false }, seed: 15);
        Write("soft", new JsonObject { ["peft_type"] = "PROMPT_TUNING", ["task_type"] = "CAUSAL_LM", ["num_virtual_tokens"] = 4, ["token_dim"] = 64, ["num_transformer_submodules"] = 1 }, seed: 16);
        _referenceModel.eval();
    }

    public string Model { get; }

    public string AdapterRoot { get; }

    public string Plugins { get; }

    public ITextTokenizer Tokenizer { get; }

    public string Folder(string adapter) => Path.Combine(AdapterRoot, adapter);

    public IReadOnlyList<int> Encode(string text) => Tokenizer.Encode(text);

    public IReadOnlyList<int> Chat(string user) => Tokenizer.Encode(ModelsChatText(user), addSpecialTokens: false);

    public static string ModelsChatText(string user) => $"user: {user}\nassistant: ";

    /// <summary>The greedy completion of <paramref name="prompt"/> with an adapter folder's weights (null: the base), served alone: text and generated ids (the end-of-sequence id included, as usage counts it).</summary>
    public (string Text, int Tokens) Reference(string? adapterFolderName, IReadOnlyList<int> prompt, int maxTokens)
    {
        long[] eos = [.. Tokenizer.EosTokenIds.Select(i => (long)i)];
        var options = new GenerationOptions { MaxNewTokens = maxTokens, StopTokenIds = eos };
        List<long> ids;
        lock (_reference)
        {
            if (adapterFolderName is null)
            {
                using (_reference.DisableAdapter())
                    ids = [.. TokenGenerator.Generate((ICausalLM)_referenceModel, [.. prompt.Select(i => (long)i)], options)];
            }
            else
            {
                _reference.SetActiveAdapters(adapterFolderName);
                ids = _reference.IsPromptLearning(adapterFolderName) ? FullForwardGreedy(prompt, options) : [.. TokenGenerator.Generate((ICausalLM)_referenceModel, [.. prompt.Select(i => (long)i)], options)];
            }
        }
        List<long> text = ids.Count > 0 && eos.Contains(ids[^1]) ? ids[..^1] : ids;
        return (Tokenizer.Decode(text.Select(i => (int)i), skipSpecialTokens: true), ids.Count);
    }

    // PEFT's forward of the whole sequence (virtual tokens prepended) every step, without a cache.
    private List<long> FullForwardGreedy(IReadOnlyList<int> prompt, GenerationOptions options)
    {
        var sequence = prompt.Select(i => (long)i).ToList();
        var generated = new List<long>();
        using (no_grad())
        {
            for (int i = 0; i < options.MaxNewTokens; i++)
            {
                using Tensor ids = torch.tensor(sequence.ToArray()).unsqueeze(0);
                using Tensor logits = _reference.CausalLMForward(ids);
                long next = logits[0, -1].argmax().item<long>();
                generated.Add(next);
                sequence.Add(next);
                if (options.StopTokenIds.Contains(next)) break;
            }
        }
        return generated;
    }

    private static JsonObject Lora(int r, params string[] targets) => new()
    {
        ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = r, ["lora_alpha"] = 2 * r, ["lora_dropout"] = 0.0,
        ["target_modules"] = new JsonArray([.. targets.Select(t => JsonValue.Create(t))]), ["init_lora_weights"] = false,
    };

    // Saves a fresh adapter under the root and keeps it loaded in the reference model under the same name.
    private void Write(string name, JsonObject config, int seed)
    {
        torch.manual_seed(seed);
        _reference.AddAdapter(name, config);
        using AdapterState state = _reference.ExportAdapter(name);
        bool prompt = _reference.IsPromptLearning(name);
        AdapterFolder.Write(Folder(name), state, prefixKeys: !prompt);
    }

    public void Dispose()
    {
        _reference.Dispose();
        _referenceModel.Dispose();
        _referenceCatalog.Dispose();
        _dir.Dispose();
    }
}
