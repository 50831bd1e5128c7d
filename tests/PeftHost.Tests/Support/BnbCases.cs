using System.Text.Json.Nodes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Support;

/// <summary>
/// The bitsandbytes reference files in tests/fixtures/bnb (made in the lab by tools/bnb-reference/make_cases.py
/// from bitsandbytes' published algorithms; see that folder's README).
/// </summary>
internal static class BnbCases
{
    public static string Root => Path.Combine(Repo.Root, "tests", "fixtures", "bnb");

    public static string Model(string name) => Path.Combine(Root, "models", name);

    public static SafetensorsFile Codec(string name) => SafetensorsFile.Open(Path.Combine(Root, "codec", name + ".safetensors"));

    public static Tensor Logits(string name, string which)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Model(name), $"logits_{which}.safetensors"));
        return TensorBridge.Read(file, "logits", ScalarType.Float32);
    }

    public static Tensor InputIds(string name)
    {
        JsonNode json = JsonNode.Parse(File.ReadAllText(Path.Combine(Model(name), "inputs.json")))!;
        long[][] rows = [.. json["input_ids"]!.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray())];
        return torch.tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length], dtype: ScalarType.Int64);
    }

    /// <summary>
    /// Copies a model case's quantized/ folder to <paramref name="folder"/>, passing each tensor through
    /// <paramref name="edit"/> (return null to drop it) and config.json's object through <paramref name="editConfig"/>.
    /// </summary>
    public static string CopyQuantized(string name, string folder, Func<SafetensorsWriteTensor, SafetensorsWriteTensor?>? edit = null, Action<JsonObject>? editConfig = null)
    {
        Directory.CreateDirectory(folder);
        string source = Path.Combine(Model(name), "quantized");
        using (var file = SafetensorsFile.Open(Path.Combine(source, "model.safetensors")))
        {
            var tensors = new List<SafetensorsWriteTensor>();
            foreach (SafetensorsTensorInfo info in file.Tensors)
            {
                var t = SafetensorsWriteTensor.FromBytes(info.Name, info.DType, info.Shape, file.GetBytes(info.Name).ToArray());
                if ((edit is null ? t : edit(t)) is { } kept) tensors.Add(kept);
            }
            SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        return folder;
    }

    public static byte[] Bytes(this SafetensorsFile file, string name) => file.GetBytes(name).ToArray();
}
