using PeftHost.Formats.Gguf;

namespace PeftHost.Llama.Runtime;

/// <summary>
/// Whether a GGUF-LoRA file fits a base GGUF, checked from both headers before llama.cpp sees the
/// adapter: llama.cpp's loader accepts pairs whose base tensor it lacks (a file written for another
/// base, or for separate Q/K/V on a base with a fused <c>attn_qkv</c>) and the first decode then
/// crashes the process, so a mismatch is refused here naming the tensor.
/// </summary>
internal sealed class GgufLoraFit
{
    private const string A = ".lora_a", B = ".lora_b";
    private readonly string _basePath;
    private readonly string _architecture;
    private readonly Dictionary<string, GgufTensorInfo> _tensors;

    private GgufLoraFit(string basePath, string architecture, Dictionary<string, GgufTensorInfo> tensors)
    {
        _basePath = basePath;
        _architecture = architecture;
        _tensors = tensors;
    }

    /// <summary>The base's architecture and tensor table, read once from its header (which holds the vocabulary too).</summary>
    public static GgufLoraFit Of(string basePath)
    {
        using GgufFile model = GgufFile.Open(basePath);
        return new GgufLoraFit(basePath, Architecture(model), model.Tensors.ToDictionary(x => x.Name, StringComparer.Ordinal));
    }

    /// <exception cref="InvalidDataException">The file is not a LoRA adapter of the base's architecture, a pair is incomplete, or a pair's
    /// base tensor is missing from the base or has other dimensions.</exception>
    public void Check(string loraPath)
    {
        using GgufFile lora = GgufFile.Open(loraPath);
        string type = lora.TryGetMetadata("general.type", out GgufValue t) ? t.AsString() : "(missing)";
        if (type != "adapter") throw new InvalidDataException($"{loraPath}: general.type is '{type}', expected 'adapter' (a GGUF-LoRA file)");
        string arch = Architecture(lora);
        if (arch != _architecture) throw new InvalidDataException($"{loraPath}: general.architecture is '{arch}', but the base {_basePath} is '{_architecture}'");

        var names = lora.Tensors.Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
        foreach (GgufTensorInfo a in lora.Tensors.Where(x => x.Name.EndsWith(A, StringComparison.Ordinal)))
        {
            string target = a.Name[..^A.Length];
            if (!names.Contains(target + B)) throw new InvalidDataException($"{loraPath}: tensor '{a.Name}' has no '{target}{B}'");
            GgufTensorInfo b = lora.GetTensor(target + B);
            if (!_tensors.TryGetValue(target, out GgufTensorInfo? w))
                throw new InvalidDataException(
                    $"{loraPath}: tensor '{a.Name}' adapts '{target}', which the base {_basePath} does not have (the adapter was written for another base, or for another Q/K/V layout)");
            // GGUF dims are innermost first: W [in, out], A [in, r], B [r, out]; llama.cpp transposes token_embd's pair, so only its presence is checked.
            if (target == "token_embd.weight") continue;
            if (w.Dimensions.Count != 2 || a.Dimensions.Count != 2 || b.Dimensions.Count != 2
                || a.Dimensions[0] != w.Dimensions[0] || b.Dimensions[1] != w.Dimensions[1] || a.Dimensions[1] != b.Dimensions[0])
                throw new InvalidDataException(
                    $"{loraPath}: '{target}' is [{Dims(w)}] in the base, but its pair is lora_a [{Dims(a)}] and lora_b [{Dims(b)}]; expected lora_a [{Dim(w, 0)}, r] and lora_b [r, {Dim(w, 1)}]");
        }
        foreach (string name in names.Where(n => n.EndsWith(B, StringComparison.Ordinal)))
        {
            if (!names.Contains(name[..^B.Length] + A)) throw new InvalidDataException($"{loraPath}: tensor '{name}' has no '{name[..^B.Length]}{A}'");
        }
    }

    private static string Architecture(GgufFile f) => f.TryGetMetadata("general.architecture", out GgufValue v) ? v.AsString() : "(missing)";

    private static string Dims(GgufTensorInfo t) => string.Join(", ", t.Dimensions);

    private static string Dim(GgufTensorInfo t, int i) => t.Dimensions.Count > i ? t.Dimensions[i].ToString(System.Globalization.CultureInfo.InvariantCulture) : "?";
}
