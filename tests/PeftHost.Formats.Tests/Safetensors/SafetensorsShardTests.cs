using System.Text.Json.Nodes;
using PeftHost.Formats.Safetensors;
using PeftHost.Formats.Tests.Support;
using Xunit;

namespace PeftHost.Formats.Tests.Safetensors;

public class SafetensorsShardTests
{
    private static List<SafetensorsWriteTensor> Tensors() =>
    [
        SafetensorsWriteTensor.FromSingles("a.weight", [4, 4], [.. Enumerable.Range(0, 16).Select(i => (float)i)]),
        SafetensorsWriteTensor.FromSingles("b.weight", [4, 4], [.. Enumerable.Range(0, 16).Select(i => -(float)i)]),
        SafetensorsWriteTensor.FromSingles("c.bias", [4], [7, 8, 9, 10], SafetensorsDType.BF16),
    ];

    [Fact]
    public void A_sharded_checkpoint_round_trips_through_its_index()
    {
        using var dir = new TempDir();
        IReadOnlyList<string> shards = SafetensorsWriter.WriteSharded(dir.Path, Tensors(), maxShardBytes: 64, new Dictionary<string, string> { ["format"] = "pt" });
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"], shards);

        JsonNode index = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "model.safetensors.index.json")))!;
        Assert.Equal(64 + 64 + 8, index["metadata"]!["total_size"]!.GetValue<long>());
        Assert.Equal("model-00002-of-00003.safetensors", index["weight_map"]!["b.weight"]!.GetValue<string>());

        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(["a.weight", "b.weight", "c.bias"], ckpt.Names);
        Assert.Equal(3, ckpt.Files.Count);
        Assert.Equal("136", ckpt.Metadata["total_size"]);
        Assert.Equal(-15f, ckpt.FileOf("b.weight").ReadSingles("b.weight")[15]);
        Assert.Equal([7f, 8, 9, 10], ckpt.FileOf("c.bias").ReadSingles("c.bias"));
        Assert.Equal("pt", ckpt.FileOf("a.weight").Metadata["format"]);
    }

    [Fact]
    public void A_missing_shard_or_a_wrong_weight_map_is_named()
    {
        using var dir = new TempDir();
        SafetensorsWriter.WriteSharded(dir.Path, Tensors(), maxShardBytes: 64);
        string index = Path.Combine(dir.Path, "model.safetensors.index.json");
        JsonNode json = JsonNode.Parse(File.ReadAllText(index))!;

        json["weight_map"]!["a.weight"] = "model-00002-of-00003.safetensors";
        File.WriteAllText(index, json.ToJsonString());
        Assert.Equal($"Checkpoint index '{index}' puts tensor 'a.weight' in shard 'model-00002-of-00003.safetensors', but that shard does not hold it.",
            Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(dir.Path)).Message);

        json["weight_map"]!["a.weight"] = "model-00001-of-00003.safetensors";
        File.WriteAllText(index, json.ToJsonString());
        File.Delete(Path.Combine(dir.Path, "model-00003-of-00003.safetensors"));
        Assert.Equal($"Checkpoint index '{index}' puts tensor 'c.bias' in shard 'model-00003-of-00003.safetensors', which does not exist.",
            Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(dir.Path)).Message);

        json["weight_map"]!["c.bias"] = "../elsewhere.safetensors";
        File.WriteAllText(index, json.ToJsonString());
        Assert.Contains("tensor 'c.bias' maps to '../elsewhere.safetensors', which is not a file name in the index's folder",
            Assert.Throws<InvalidDataException>(() => SafetensorsCheckpoint.Open(dir.Path)).Message);
    }
}
