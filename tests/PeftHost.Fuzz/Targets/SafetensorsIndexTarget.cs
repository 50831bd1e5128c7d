using PeftHost.Formats.Safetensors;

namespace PeftHost.Fuzz.Targets;

/// <summary>
/// model.safetensors.index.json beside two valid shards (model-00001-of-00002.safetensors holding "a",
/// model-00002-of-00002.safetensors holding "b"): the index is the input, the checkpoint is opened from it.
/// </summary>
public sealed class SafetensorsIndexTarget : FuzzTarget
{
    /// <summary>The shards every run finds beside the index.</summary>
    public static IReadOnlyDictionary<string, byte[]> Shards { get; } = new Dictionary<string, byte[]>
    {
        ["model-00001-of-00002.safetensors"] = SeedFiles.Safetensors(("a", [2, 2])),
        ["model-00002-of-00002.safetensors"] = SeedFiles.Safetensors(("b", [3])),
    };

    /// <inheritdoc />
    public override string Name => "safetensors-index";

    /// <inheritdoc />
    public override string Description => "model.safetensors.index.json: weight_map, shard names, metadata; every tensor read from its shard";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        FuzzScratch.Clear();
        foreach ((string name, byte[] bytes) in Shards) FuzzScratch.Add(name, bytes);
        string index = FuzzScratch.Add(SafetensorsWriter.IndexFileName, input);
        using SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.Open(index);
        foreach (string name in checkpoint.Names)
        {
            SafetensorsFile file = checkpoint.FileOf(name);
            string shard = Path.GetFileName(file.Path);
            if (!Shards.ContainsKey(shard)) throw Inconsistent($"tensor '{name}' was read from '{file.Path}', which is not a shard beside the index");
            if (checkpoint.Info(name).ByteLength != file.GetBytes(name).Length) throw Inconsistent($"tensor '{name}' reads a wrong length");
        }
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is InvalidDataException or FileNotFoundException;
}
