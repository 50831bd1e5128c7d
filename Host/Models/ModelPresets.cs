using System.Text.Json.Nodes;
using PeftHost.Models.Config;
using PeftHost.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>Random-initialised models of fixed sizes, in Hugging Face's folder layout (for tests, demos and benchmarks).</summary>
public static class ModelPresets
{
    // Llama's bos and eos; byte-level BPE needs no <unk>.
    private static readonly string[] LlamaSpecialTokens = ["<s>", "</s>"];

    /// <summary>Architectures with presets.</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["llama", "bert", "gpt2"];

    /// <summary>Sizes.</summary>
    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "small", "medium"];

    /// <summary>The config.json object of a preset (tiny = the shared conformance configs).</summary>
    public static JsonObject Config(string arch, string size) => (arch, size) switch
    {
        // Tiny = the conformance configs. Their 256-token vocabulary holds a byte-level BPE: the bytes UTF-8
        // never uses (0xFF, 0xFE, ...) make room for the special tokens (<s> </s>; <|endoftext|>).
        ("llama", "tiny") => Llama(256, 64, 128, 2, 4, 2, tiny: true),
        ("llama", "small") => Llama(8192, 512, 1408, 8, 8, 8, tiny: false),
        ("llama", "medium") => Llama(32000, 1024, 2816, 8, 16, 8, tiny: false),
        ("bert", "tiny") => Bert(256, 64, 128, 2, 4, 128, tiny: true),
        ("bert", "small") => Bert(8192, 256, 1024, 4, 4, 512, tiny: false),
        ("bert", "medium") => Bert(30522, 512, 2048, 8, 8, 512, tiny: false),
        ("gpt2", "tiny") => Gpt2(256, 64, 2, 4, 128, tiny: true),
        ("gpt2", "small") => Gpt2(8192, 256, 4, 4, 512, tiny: false),
        ("gpt2", "medium") => Gpt2(50257, 512, 8, 8, 1024, tiny: false),
        _ => throw new ArgumentException($"No preset for --arch {arch} --size {size} (arch: {string.Join("|", Architectures)}; size: {string.Join("|", Sizes)})."),
    };

    /// <summary>
    /// Builds a preset with transformers' initialisation (normal(0, initializer_range) for matrices,
    /// zero biases, unit norms) under <paramref name="seed"/>.
    /// </summary>
    public static (ModelConfig Config, nn.Module Model) Create(string arch, string size, long seed)
    {
        ModelConfig config = ModelConfigReader.Parse(Config(arch, size), $"preset {arch}/{size}");
        torch.manual_seed(seed);
        nn.Module model = ModelFactory.Create(config);
        double std = config.Raw["initializer_range"]?.GetValue<double>() ?? 0.02;
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        using (no_grad())
        {
            foreach ((string name, var p) in model.named_parameters())
            {
                if (tied.ContainsKey(name)) continue;
                if (p.dim() >= 2) nn.init.normal_(p, 0, std);
                else if (name.EndsWith(".bias", StringComparison.Ordinal)) nn.init.zeros_(p);
                else nn.init.ones_(p);
            }
        }
        model.eval();
        return (config, model);
    }

    /// <summary>
    /// Writes a preset model folder: the tokenizer files (<see cref="WriteTokenizerFiles"/>, which set
    /// the special token ids), then config.json and model.safetensors.
    /// </summary>
    public static ModelConfig Write(string arch, string size, string folder, long seed)
    {
        (ModelConfig config, nn.Module model) = Create(arch, size, seed);
        using (model)
        {
            WriteTokenizerFiles(config, folder);
            ModelFactory.Save(model, config, folder);
        }
        return config;
    }

    /// <summary>
    /// Writes the tokenizer files of a generated model: for llama and gpt2 a byte-level BPE
    /// (tokenizer.json + tokenizer_config.json, at most the model's vocab size; <c>&lt;s&gt;</c>
    /// <c>&lt;/s&gt;</c> for llama, <c>&lt;|endoftext|&gt;</c> for gpt2) and generation_config.json;
    /// for bert a WordPiece vocab.txt + tokenizer_config.json. The special token ids are written
    /// into <paramref name="config"/>'s raw object, so config.json agrees with the tokenizer.
    /// </summary>
    /// <exception cref="NotSupportedException">The config's model_type has no tokenizer preset.</exception>
    public static void WriteTokenizerFiles(ModelConfig config, string folder)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        switch (config.ModelType)
        {
            case "llama":
            {
                // The writer puts special tokens after the learned vocabulary, in the order given.
                int count = TokenizerFiles.WriteByteLevelBpe(folder, config.VocabSize, LlamaSpecialTokens);
                SetSpecialIds(config, folder, bos: count - 2, eos: count - 1);
                break;
            }
            case "gpt2":
            {
                int count = TokenizerFiles.WriteByteLevelBpe(folder, config.VocabSize, [SpecialTokens.EndOfText]);
                SetSpecialIds(config, folder, bos: count - 1, eos: count - 1);
                break;
            }
            case "bert":
                // vocab.txt starts with [PAD], matching the preset's pad_token_id 0.
                TokenizerFiles.WriteWordPieceVocab(folder, config.VocabSize);
                break;
            default:
                throw new NotSupportedException($"No tokenizer preset for model_type '{config.ModelType}'.");
        }
    }

    private static void SetSpecialIds(ModelConfig config, string folder, int bos, int eos)
    {
        config.Raw["bos_token_id"] = bos;
        config.Raw["eos_token_id"] = eos;
        var generation = new JsonObject { ["_from_model_config"] = true, ["bos_token_id"] = bos, ["eos_token_id"] = eos };
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), generation.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    private static JsonObject Llama(int vocab, int hidden, int ffn, int layers, int heads, int kvHeads, bool tiny) => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama",
        ["vocab_size"] = vocab, ["hidden_size"] = hidden, ["intermediate_size"] = ffn, ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads, ["num_key_value_heads"] = kvHeads, ["hidden_act"] = "silu",
        ["max_position_embeddings"] = tiny ? 128 : 2048, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["rope_scaling"] = null,
        ["attention_bias"] = false, ["attention_dropout"] = 0.0, ["mlp_bias"] = false, ["tie_word_embeddings"] = false,
        ["initializer_range"] = tiny ? 0.2 : 0.02, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["torch_dtype"] = "float32",
    };

    private static JsonObject Bert(int vocab, int hidden, int ffn, int layers, int heads, int positions, bool tiny) => new()
    {
        ["architectures"] = new JsonArray("BertForSequenceClassification"), ["model_type"] = "bert",
        ["vocab_size"] = vocab, ["hidden_size"] = hidden, ["intermediate_size"] = ffn, ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads, ["max_position_embeddings"] = positions, ["type_vocab_size"] = 2, ["hidden_act"] = "gelu",
        ["hidden_dropout_prob"] = 0.1, ["attention_probs_dropout_prob"] = 0.1, ["classifier_dropout"] = null, ["layer_norm_eps"] = 1e-12,
        ["pad_token_id"] = 0, ["position_embedding_type"] = "absolute", ["initializer_range"] = tiny ? 0.2 : 0.02, ["torch_dtype"] = "float32",
    };

    private static JsonObject Gpt2(int vocab, int hidden, int layers, int heads, int positions, bool tiny) => new()
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"), ["model_type"] = "gpt2",
        ["vocab_size"] = vocab, ["n_embd"] = hidden, ["n_layer"] = layers, ["n_head"] = heads, ["n_positions"] = positions, ["n_inner"] = null,
        ["activation_function"] = "gelu_new", ["layer_norm_epsilon"] = 1e-5, ["embd_pdrop"] = 0.1, ["attn_pdrop"] = 0.1, ["resid_pdrop"] = 0.1,
        ["scale_attn_weights"] = true, ["initializer_range"] = tiny ? 0.2 : 0.02, ["bos_token_id"] = 50256, ["eos_token_id"] = 50256, ["torch_dtype"] = "float32",
    };
}
