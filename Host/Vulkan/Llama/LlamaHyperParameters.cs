using PeftHost.Formats.Gguf;

namespace PeftHost.Vulkan.Llama;

/// <summary>A GGUF file's <c>llama.*</c> hyper-parameters (llama.cpp's llm_arch LLAMA).</summary>
public sealed record LlamaHyperParameters
{
    /// <summary>general.name (or the file name).</summary>
    public required string Name { get; init; }
    /// <summary>llama.vocab_size (or the token list's length, or token_embd's rows).</summary>
    public required int VocabSize { get; init; }
    /// <summary>llama.context_length.</summary>
    public required int ContextLength { get; init; }
    /// <summary>llama.embedding_length.</summary>
    public required int Hidden { get; init; }
    /// <summary>llama.block_count.</summary>
    public required int Layers { get; init; }
    /// <summary>llama.feed_forward_length.</summary>
    public required int FeedForward { get; init; }
    /// <summary>llama.attention.head_count.</summary>
    public required int Heads { get; init; }
    /// <summary>llama.attention.head_count_kv.</summary>
    public required int KvHeads { get; init; }
    /// <summary>llama.attention.key_length, else hidden / heads.</summary>
    public required int HeadDim { get; init; }
    /// <summary>llama.rope.freq_base.</summary>
    public required double RopeFreqBase { get; init; }
    /// <summary>llama.attention.layer_norm_rms_epsilon.</summary>
    public required float RmsEps { get; init; }
    /// <summary>tokenizer.ggml.eos_token_id, when present.</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Reads and checks the parameters; other architectures are a clear error.</summary>
    public static LlamaHyperParameters Read(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string arch = file.TryGetMetadata("general.architecture", out GgufValue a) ? a.AsString() : "(none)";
        if (arch != "llama")
        {
            throw new NotSupportedException($"{file.FileName}: the Vulkan forward runs general.architecture 'llama', not '{arch}'.");
        }
        int Get(string key) => checked((int)file.GetMetadata(key).AsUInt64());
        int? Opt(string key) => file.TryGetMetadata(key, out GgufValue v) ? checked((int)v.AsUInt64()) : null;
        int hidden = Get("llama.embedding_length");
        int heads = Get("llama.attention.head_count");
        GgufTensorInfo embd = file.GetTensor("token_embd.weight");
        int vocab = Opt("llama.vocab_size")
            ?? (file.TryGetMetadata("tokenizer.ggml.tokens", out GgufValue toks) ? toks.AsArray().Length : (int)embd.Rows);
        var p = new LlamaHyperParameters
        {
            Name = file.TryGetMetadata("general.name", out GgufValue n) ? n.AsString() : Path.GetFileNameWithoutExtension(file.FileName),
            VocabSize = vocab,
            ContextLength = Get("llama.context_length"),
            Hidden = hidden,
            Layers = Get("llama.block_count"),
            FeedForward = Get("llama.feed_forward_length"),
            Heads = heads,
            KvHeads = Opt("llama.attention.head_count_kv") ?? heads,
            HeadDim = Opt("llama.attention.key_length") ?? hidden / heads,
            RopeFreqBase = file.TryGetMetadata("llama.rope.freq_base", out GgufValue fb) ? fb.AsDouble() : 10000.0,
            RmsEps = (float)file.GetMetadata("llama.attention.layer_norm_rms_epsilon").AsDouble(),
            EosTokenId = Opt("tokenizer.ggml.eos_token_id"),
        };
        if (p.Heads % p.KvHeads != 0 || p.HeadDim % 2 != 0)
        {
            throw new NotSupportedException($"{file.FileName}: {p.Heads} heads / {p.KvHeads} KV heads / head size {p.HeadDim} is not a supported attention shape.");
        }
        if ((int)embd.Rows != p.VocabSize || (int)embd.Columns != p.Hidden)
        {
            throw new GgufFormatException(file.FileName, embd.Name, $"shape [{embd.Columns}, {embd.Rows}] does not match vocab {p.VocabSize} x hidden {p.Hidden}.");
        }
        return p;
    }
}
