using System.Text.Json.Nodes;
using PeftHost.Engine.Export;
using PeftHost.Formats.Gguf;
using PeftHost.Llama;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>
/// llama.cpp's own tokenizer (LLamaSharp on a vocabulary-only GGUF we wrote) splits text exactly as our
/// tokenizer.json tokenizer does: tokenizer.ggml.pre is chosen from the pre-tokenizer. With
/// llama.cpp's "default" instead, digits and spaces split differently (the reason for the choice).
/// </summary>
public sealed class LlamaTokenizerTests : IDisposable
{
    private static readonly string[] Samples =
    [
        "It's 2024: 12345",
        "1234567890 and 3.14159, or 1,000,000!",
        "  two leading spaces,   three inside\tand a tab",
        "lines\n\nwith\r\nbreaks \n",
        "Hello, World!!! (it's) we'll YOU'RE",
        "café naïve Ærø – “quotes” — 東京 🚀",
        "x",
        "    ",
    ];

    public static TheoryData<string> Texts() => new(Samples);

    private readonly ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Theory]
    [MemberData(nameof(Texts))]
    public void Gpt2_byte_level_text_tokenizes_the_same_in_llama_cpp(string text) => AssertSame(Folder("gpt2", null), "gpt-2", text);

    [Theory]
    [MemberData(nameof(Texts))]
    public void Llama3_split_text_tokenizes_the_same_in_llama_cpp(string text) => AssertSame(Folder("llama3", Llama3PreTokenizer()), "llama-bpe", text);

    [Fact]
    public void Llama_cpp_default_pre_tokenizer_splits_digits_otherwise()
    {
        string folder = Folder("default", null);
        ITextTokenizer ours = TokenizerLoader.FromDirectory(folder);
        string gguf = VocabGguf(folder, pre: "default");
        using LlamaCppModel model = LlamaCppModel.Open(gguf, vocabOnly: true);
        Assert.Contains(Samples, text => !model.Tokenize(text).SequenceEqual(ours.Encode(text, addSpecialTokens: false)));
    }

    [Fact]
    public void An_unknown_pre_tokenizer_is_refused_with_the_reason()
    {
        string path = Path.Combine(_scratch.Path, "tokenizer.json");
        var json = new JsonObject { ["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁" } };
        var e = Assert.Throws<NotSupportedException>(() => GgufPreTokenizer.Choose(json, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("Metaspace", e.Message);
        Assert.Contains("no llama.cpp equivalent", e.Message);
        json["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true };
        Assert.Throws<NotSupportedException>(() => GgufPreTokenizer.Choose(json, path));
        json["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" };
        json["normalizer"] = new JsonObject { ["type"] = "Lowercase" };
        Assert.Contains("normalizer 'Lowercase'", Assert.Throws<NotSupportedException>(() => GgufPreTokenizer.Choose(json, path)).Message);
    }

    private void AssertSame(string folder, string pre, string text)
    {
        ITextTokenizer ours = TokenizerLoader.FromDirectory(folder);
        string gguf = VocabGguf(folder, pre: null);
        using (GgufFile f = GgufFile.Open(gguf)) Assert.Equal(pre, f.GetMetadata("tokenizer.ggml.pre").AsString());
        using LlamaCppModel model = LlamaCppModel.Open(gguf, vocabOnly: true);
        Assert.Equal(ours.Encode(text, addSpecialTokens: false), model.Tokenize(text));
    }

    // The small preset's trained byte-level BPE (8192 tokens, digits and words merged), optionally with another pre-tokenizer.
    private string Folder(string name, JsonObject? preTokenizer)
    {
        string folder = Path.Combine(_scratch.Path, name);
        Directory.CreateDirectory(folder);
        ModelConfig config = ModelConfigReader.Parse(ModelPresets.Config("llama", "small"));
        ModelPresets.WriteTokenizerFiles(config, folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.Raw.ToJsonString());
        if (preTokenizer is not null)
        {
            string path = Path.Combine(folder, "tokenizer.json");
            JsonObject json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["pre_tokenizer"] = preTokenizer;
            File.WriteAllText(path, json.ToJsonString());
        }
        return folder;
    }

    // A GGUF with the llama.* keys and the tokenizer keys only (llama.cpp reads no tensors with vocab_only).
    private static string VocabGguf(string folder, string? pre)
    {
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        var llama = (LlamaConfig)ModelConfigReader.Parse(config);
        var writer = new GgufWriter();
        writer.SetMetadata("general.architecture", GgufValue.FromString("llama"));
        writer.SetMetadata("llama.vocab_size", GgufValue.FromUInt32((uint)llama.VocabSize));
        writer.SetMetadata("llama.context_length", GgufValue.FromUInt32((uint)llama.MaxPositions));
        writer.SetMetadata("llama.embedding_length", GgufValue.FromUInt32((uint)llama.HiddenSize));
        writer.SetMetadata("llama.block_count", GgufValue.FromUInt32((uint)llama.NumLayers));
        writer.SetMetadata("llama.feed_forward_length", GgufValue.FromUInt32((uint)llama.IntermediateSize));
        writer.SetMetadata("llama.rope.dimension_count", GgufValue.FromUInt32((uint)llama.HeadDim));
        writer.SetMetadata("llama.attention.head_count", GgufValue.FromUInt32((uint)llama.NumHeads));
        writer.SetMetadata("llama.attention.head_count_kv", GgufValue.FromUInt32((uint)llama.NumKeyValueHeads));
        writer.SetMetadata("llama.attention.layer_norm_rms_epsilon", GgufValue.FromFloat32((float)llama.RmsNormEps));
        GgufTokenizerMetadata.Add(writer, folder, llama.VocabSize, config);
        if (pre is not null) writer.SetMetadata("tokenizer.ggml.pre", GgufValue.FromString(pre));
        string path = Path.Combine(folder, $"vocab-{pre ?? "chosen"}.gguf");
        writer.Write(path);
        return path;
    }

    private static JsonObject Llama3PreTokenizer() => new()
    {
        ["type"] = "Sequence",
        ["pretokenizers"] = new JsonArray(
            new JsonObject
            {
                ["type"] = "Split",
                ["pattern"] = new JsonObject { ["Regex"] = GgufPreTokenizer.Llama3Pattern },
                ["behavior"] = "Isolated",
                ["invert"] = false,
            },
            new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
    };
}
