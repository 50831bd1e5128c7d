using PeftHost.Formats;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Models.Config;
using PeftHost.Models.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// <c>pefthost merge</c>: a base model folder with adapters merged into its weights, written as a plain
/// Hugging Face model folder (config.json, model.safetensors or shards with an index, the base's
/// tokenizer and generation files) that loads without PEFT.
/// </summary>
/// <remarks>
/// A base saved quantized (bitsandbytes' layout) is decoded to float32 first and the adapters merged there, so a
/// full-precision output carries the base's quantization rounding once and the update exactly. Asked for a
/// quantized output, the merged weights are quantized again, which is what PEFT's merge into bitsandbytes layers
/// gives (dequantize, add the delta, requantize), and written in bitsandbytes' layout.
/// </remarks>
public static class MergedModelWriter
{
    /// <summary>Above this many bytes of weights the checkpoint is sharded (2 GB, as the issue asks).</summary>
    public const long DefaultMaxShardBytes = 2_000_000_000;

    /// <summary>Files copied from the base folder when present.</summary>
    public static IReadOnlyList<string> CopiedFiles { get; } =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json",
        "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json", "generation_config.json",
    ];

    /// <summary>What was written.</summary>
    /// <param name="Files">The weight files written (one, or the shards).</param>
    /// <param name="Tensors">Number of tensors saved.</param>
    /// <param name="Bytes">Bytes of tensor data.</param>
    /// <param name="DType">The saved dtype.</param>
    /// <param name="Copied">Base files copied beside the weights.</param>
    public sealed record Result(IReadOnlyList<string> Files, int Tensors, long Bytes, ScalarType DType, IReadOnlyList<string> Copied);

    /// <summary>
    /// Loads <paramref name="modelFolder"/> in float32 with <paramref name="adapters"/> (all active), merges
    /// and unloads them (modules_to_save copies take the originals' places) and writes the result to
    /// <paramref name="outFolder"/> in <paramref name="dtype"/> (default: the base's torch_dtype). With
    /// <paramref name="quantize"/> the merged linear layers are quantized (the others kept in float32) and the
    /// folder written in bitsandbytes' layout, as transformers saves a quantized model. With <paramref name="baseQuantization"/>
    /// a float base is first quantized that way and decoded again, the base a QLoRA adapter was trained on (a folder saved
    /// quantized is that already), so the merged model gives what the adapter gave on it.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter is given; <paramref name="outFolder"/> is a file, the base folder, or not empty while <paramref name="force"/> is false.</exception>
    public static Result Merge(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string outFolder, string pluginsFolder,
        ScalarType? dtype = null, bool force = false, long maxShardBytes = DefaultMaxShardBytes, BitsAndBytesConfig? quantize = null,
        BitsAndBytesConfig? baseQuantization = null)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.Count == 0) throw new ArgumentException("merge needs at least one adapter.", nameof(adapters));
        if (quantize is not null && dtype is not null && dtype != ScalarType.Float32)
            throw new ArgumentException($"a quantized output keeps its other weights in float32; --dtype {dtype} cannot apply.", nameof(dtype));
        quantize?.Validate("the requested output quantization");
        CheckOutput(modelFolder, outFolder, force);
        using AdaptedModel loaded = AdaptedModel.Load(modelFolder, adapters, pluginsFolder, ScalarType.Float32, CPU, baseQuantization, dequantize: true);
        ScalarType target = dtype ?? BaseDType(loaded.Config);
        nn.Module merged = loaded.Peft!.MergeAndUnload();
        if (quantize is not null) return WriteQuantized(modelFolder, merged, loaded.Config, outFolder, quantize);

        IReadOnlyDictionary<string, string> tied = (merged as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        Func<string, string> keyOf = BaseKeyNames(modelFolder, ModelFactory.BasePrefix(loaded.Config));
        var tensors = new List<SafetensorsWriteTensor>();
        using (no_grad())
            foreach ((string name, var p) in merged.named_parameters())
                // transformers saves a tied weight once, under the embedding's name.
                if (!tied.ContainsKey(name)) tensors.Add(TensorBridge.ToWrite(keyOf(name), p.to(target)));
        long bytes = tensors.Sum(t => t.ByteLength);

        Directory.CreateDirectory(outFolder);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        IReadOnlyList<string> files;
        if (bytes > maxShardBytes)
            files = SafetensorsWriter.WriteSharded(outFolder, tensors, maxShardBytes, metadata);
        else
        {
            SafetensorsWriter.Write(Path.Combine(outFolder, SafetensorsCheckpoint.SingleFileName), tensors, metadata);
            files = [SafetensorsCheckpoint.SingleFileName];
        }
        RemoveStaleWeights(outFolder, files);

        JsonObject config = (JsonObject)loaded.Config.Raw.DeepClone();
        config["torch_dtype"] = DTypeName(target);
        AtomicFile.WriteAllBytes(Path.Combine(outFolder, "config.json"), JsonSerializer.SerializeToUtf8Bytes(config, new JsonSerializerOptions { WriteIndented = true }));
        return new Result(files, tensors.Count, bytes, target, CopyBaseFiles(modelFolder, outFolder));
    }

    // The merged float model quantized with the requested config and saved as transformers saves a bitsandbytes model.
    private static Result WriteQuantized(string modelFolder, nn.Module merged, ModelConfig config, string outFolder, BitsAndBytesConfig quantize)
    {
        ModelQuantizer.Quantize(merged, quantize);
        Directory.CreateDirectory(outFolder);
        RemoveStaleWeights(outFolder, [SafetensorsCheckpoint.SingleFileName]);
        BitsAndBytesCheckpoint.Save(merged, config, quantize, outFolder);
        using var written = SafetensorsFile.Open(Path.Combine(outFolder, SafetensorsCheckpoint.SingleFileName));
        long bytes = written.Tensors.Sum(t => t.End - t.Begin);
        return new Result([SafetensorsCheckpoint.SingleFileName], written.Tensors.Count, bytes, ScalarType.Float32, CopyBaseFiles(modelFolder, outFolder));
    }

    private static List<string> CopyBaseFiles(string modelFolder, string outFolder)
    {
        var copied = new List<string>();
        foreach (string file in CopiedFiles)
        {
            string source = Path.Combine(modelFolder, file);
            if (!File.Exists(source)) continue;
            AtomicFile.Copy(source, Path.Combine(outFolder, file));
            copied.Add(file);
        }
        return copied;
    }

    private static void CheckOutput(string modelFolder, string outFolder, bool force)
    {
        if (string.Equals(Path.GetFullPath(modelFolder).TrimEnd('/'), Path.GetFullPath(outFolder).TrimEnd('/'), StringComparison.Ordinal))
            throw new ArgumentException($"The output folder '{outFolder}' is the base model's folder: write the merged model elsewhere.");
        if (File.Exists(outFolder)) throw new ArgumentException($"The output '{outFolder}' is a file, not a folder.");
        if (Directory.Exists(outFolder) && Directory.EnumerateFileSystemEntries(outFolder).Any() && !force)
            throw new ArgumentException($"The output folder '{outFolder}' exists and is not empty: pass --force to overwrite it.");
    }

    // A forced overwrite must not leave an older checkpoint's shards or index beside the new one: loaders would read them.
    private static void RemoveStaleWeights(string folder, IReadOnlyList<string> written)
    {
        var keep = new HashSet<string>(written, StringComparer.Ordinal);
        if (written.Count > 1) keep.Add(SafetensorsWriter.IndexFileName);
        foreach (string path in Directory.GetFiles(folder, "model*.safetensors").Append(Path.Combine(folder, SafetensorsWriter.IndexFileName)))
            if (File.Exists(path) && !keep.Contains(Path.GetFileName(path))) File.Delete(path);
    }

    // The merged keys follow the base checkpoint's spelling (with or without the base model's prefix).
    private static Func<string, string> BaseKeyNames(string modelFolder, string prefix)
    {
        using var checkpoint = SafetensorsCheckpoint.Open(modelFolder);
        var names = new HashSet<string>(checkpoint.Names, StringComparer.Ordinal);
        return name =>
        {
            if (names.Contains(name)) return name;
            if (name.StartsWith(prefix + ".", StringComparison.Ordinal) && names.Contains(name[(prefix.Length + 1)..])) return name[(prefix.Length + 1)..];
            if (names.Contains(prefix + "." + name)) return prefix + "." + name;
            return name;
        };
    }

    private static ScalarType BaseDType(ModelConfig config) => config.Raw["torch_dtype"]?.GetValue<string>() switch
    {
        "float16" => ScalarType.Float16,
        "bfloat16" => ScalarType.BFloat16,
        _ => ScalarType.Float32,
    };

    private static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        _ => "float32",
    };
}
