using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats;
using PeftHost.Formats.Gguf;
using PeftHost.Models;
using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Export;

/// <summary>
/// Writes a Llama-family model (adapters merged) as GGUF the way llama.cpp's convert_hf_to_gguf.py
/// does for architecture <c>llama</c>: its tensor names, its metadata keys, and Q/K projection rows
/// permuted from Hugging Face's rotate-half layout to GGML's interleaved RoPE pairs
/// (<c>LlamaModel.permute</c>), so llama.cpp and our device forward both use the "normal" RoPE.
/// </summary>
public static class LlamaGgufExporter
{
    /// <summary>
    /// Loads <paramref name="modelFolder"/>, applies and merges <paramref name="adapters"/> through the
    /// plugins (PeftModel.MergeAndUnload) and writes the GGUF file. Returns what was written. With
    /// <paramref name="baseQuantization"/> a float base is quantized that way and decoded first (the base a QLoRA adapter
    /// was trained on); a folder saved quantized is always decoded first.
    /// </summary>
    public static GgufExportSummary Export(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string pluginsFolder, GgmlType quant, string outPath,
        Formats.BitsAndBytes.BitsAndBytesConfig? baseQuantization = null)
    {
        GgufWriter writer = Build(modelFolder, adapters, pluginsFolder, quant, out GgufExportSummary summary, baseQuantization);
        AtomicFile.Write(outPath, writer.Write);
        return summary;
    }

    /// <summary>As <see cref="Export"/>, returning the writer (nothing written to disk), Q, K and V laid out as <paramref name="qkv"/> says.</summary>
    public static GgufWriter Build(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string pluginsFolder, GgmlType quant, out GgufExportSummary summary,
        Formats.BitsAndBytes.BitsAndBytesConfig? baseQuantization = null, GgufQkvLayout qkv = GgufQkvLayout.Separate)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        ModelConfig config = ModelConfigReader.Read(modelFolder);
        LlamaConfig llama = CheckSupported(config);
        // A folder saved quantized (bitsandbytes' layout) is decoded first; quant then picks the GGUF weight type.
        (_, nn.Module loaded) = ModelFactory.LoadDequantized(modelFolder, quantizeFirst: baseQuantization);
        nn.Module model = loaded;
        try
        {
            if (adapters.Count > 0)
            {
                using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
                catalog.Scan();
                using var peft = new PeftModel(loaded, catalog);
                foreach (AdapterSpec a in adapters)
                    peft.LoadAdapter(a.Folder, a.Name);
                peft.SetActiveAdapters([.. adapters.Select(a => a.Name)]);
                model = peft.MergeAndUnload();
            }
            string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelFolder)));
            GgufWriter writer = Build(model, llama, modelFolder, quant, name, qkv);
            summary = new GgufExportSummary(name, quant, llama.NumLayers, adapters.Count);
            return writer;
        }
        finally
        {
            model.Dispose();
        }
    }

    /// <summary>The GGUF of an already loaded (and merged) Llama model, Q, K and V laid out as <paramref name="qkv"/> says.</summary>
    public static GgufWriter Build(nn.Module model, LlamaConfig config, string modelFolder, GgmlType quant, string name, GgufQkvLayout qkv = GgufQkvLayout.Separate)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        var writer = new GgufWriter();
        writer.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        writer.SetMetadata("general.name", GgufValue.FromString(name));
        writer.SetMetadata("llama.vocab_size", GgufValue.FromUInt32((uint)config.VocabSize));
        writer.SetMetadata("llama.context_length", GgufValue.FromUInt32((uint)config.MaxPositions));
        writer.SetMetadata("llama.embedding_length", GgufValue.FromUInt32((uint)config.HiddenSize));
        writer.SetMetadata("llama.block_count", GgufValue.FromUInt32((uint)config.NumLayers));
        writer.SetMetadata("llama.feed_forward_length", GgufValue.FromUInt32((uint)config.IntermediateSize));
        writer.SetMetadata("llama.rope.dimension_count", GgufValue.FromUInt32((uint)config.HeadDim));
        writer.SetMetadata("llama.attention.head_count", GgufValue.FromUInt32((uint)config.NumHeads));
        writer.SetMetadata("llama.attention.head_count_kv", GgufValue.FromUInt32((uint)config.NumKeyValueHeads));
        if (config.HeadDim * config.NumHeads != config.HiddenSize)
        {
            writer.SetMetadata("llama.attention.key_length", GgufValue.FromUInt32((uint)config.HeadDim));
            writer.SetMetadata("llama.attention.value_length", GgufValue.FromUInt32((uint)config.HeadDim));
        }
        writer.SetMetadata("llama.rope.freq_base", GgufValue.FromFloat32((float)config.RopeTheta));
        writer.SetMetadata("llama.attention.layer_norm_rms_epsilon", GgufValue.FromFloat32((float)config.RmsNormEps));
        writer.SetMetadata("general.file_type", GgufValue.FromUInt32(GgufQuant.FileType(quant)));
        writer.SetMetadata("general.quantization_version", GgufValue.FromUInt32(2));
        GgufTokenizerMetadata.Add(writer, modelFolder, config.VocabSize, config.Raw);

        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach ((string key, Tensor t) in model.state_dict()) state[key] = t;
        Tensor Get(string key) => state.TryGetValue(key, out Tensor? t) ? t : throw new InvalidDataException($"GGUF export: the model has no tensor '{key}'.");

        using (no_grad())
        {
            Add(writer, "token_embd.weight", Get("model.embed_tokens.weight"), quant);
            for (int i = 0; i < config.NumLayers; i++)
            {
                string p = $"model.layers.{i}.";
                string b = $"blk.{i}.";
                Add(writer, b + "attn_norm.weight", Get(p + "input_layernorm.weight"), quant);
                using (Tensor q = Permute(Get(p + "self_attn.q_proj.weight"), config.NumHeads))
                using (Tensor k = Permute(Get(p + "self_attn.k_proj.weight"), config.NumKeyValueHeads))
                {
                    Tensor v = Get(p + "self_attn.v_proj.weight");
                    if (qkv == GgufQkvLayout.Fused)
                    {
                        // Rows Q, K, V: each output row is the same dot product as in the separate tensors (quantized per row).
                        using Tensor fused = torch.cat([q, k, v], 0);
                        Add(writer, b + "attn_qkv.weight", fused, quant);
                    }
                    else
                    {
                        Add(writer, b + "attn_q.weight", q, quant);
                        Add(writer, b + "attn_k.weight", k, quant);
                        Add(writer, b + "attn_v.weight", v, quant);
                    }
                }
                Add(writer, b + "attn_output.weight", Get(p + "self_attn.o_proj.weight"), quant);
                Add(writer, b + "ffn_norm.weight", Get(p + "post_attention_layernorm.weight"), quant);
                Add(writer, b + "ffn_gate.weight", Get(p + "mlp.gate_proj.weight"), quant);
                Add(writer, b + "ffn_up.weight", Get(p + "mlp.up_proj.weight"), quant);
                Add(writer, b + "ffn_down.weight", Get(p + "mlp.down_proj.weight"), quant);
            }
            Add(writer, "output_norm.weight", Get("model.norm.weight"), quant);
            if (!config.TieWordEmbeddings)
                Add(writer, "output.weight", Get("lm_head.weight"), quant);
        }
        return writer;
    }

    /// <summary>The Llama-family configs this exporter (and the device forward) handle; a clear error for the rest.</summary>
    public static LlamaConfig CheckSupported(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config is not LlamaConfig llama || config.ModelType is not ("llama" or "mistral"))
            throw new NotSupportedException($"GGUF export and the Vulkan backend support the Llama family (model_type llama or mistral), not '{config.ModelType}' ({config.Architecture}).");
        if (llama.AttentionBias || llama.QkvBias || llama.MlpBias)
            throw new NotSupportedException($"GGUF export: {config.ModelType} with attention or MLP biases is not supported.");
        if (llama.RopeScaling is not null)
            throw new NotSupportedException($"GGUF export: rope_scaling is not supported yet (model_type {config.ModelType}).");
        if (llama.SlidingWindow is int w && w < llama.MaxPositions)
            throw new NotSupportedException($"GGUF export: a sliding window ({w}) shorter than the context ({llama.MaxPositions}) is not supported.");
        return llama;
    }

    /// <summary>
    /// convert_hf_to_gguf's <c>LlamaModel.permute</c>: rows of each head go from rotate-half order
    /// (i, i + d/2) to interleaved pairs (2i, 2i + 1).
    /// </summary>
    public static Tensor Permute(Tensor weight, int heads)
    {
        ArgumentNullException.ThrowIfNull(weight);
        long rows = weight.shape[0];
        long cols = weight.shape[1];
        return weight.reshape(heads, 2, rows / heads / 2, cols).transpose(1, 2).reshape(rows, cols).contiguous();
    }

    private static void Add(GgufWriter writer, string name, Tensor tensor, GgmlType quant)
    {
        using Tensor f = tensor.detach().to(ScalarType.Float32).cpu().contiguous();
        long[] shape = f.shape;
        float[] values = f.data<float>().ToArray();
        GgmlType type = GgufQuant.ForTensor(quant, shape);
        ulong[] dims = [.. shape.Reverse().Select(d => (ulong)d)];
        writer.AddTensor(name, dims, type, values);
    }
}
