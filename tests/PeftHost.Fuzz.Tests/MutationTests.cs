using System.Text;
using System.Text.RegularExpressions;
using PeftHost.Fuzz.Targets;
using Xunit;

namespace PeftHost.Fuzz.Tests;

/// <summary>
/// Thousands of deterministic mutations per format (CsCheck generators, fixed seeds): every one ends in a
/// correct read or a clean, documented error that names its file or field, as the fuzz targets define them
/// (a crash, an inconsistent read or an unbounded allocation fails the test with the input as base64).
/// Both outcomes must occur, so a target that refuses everything (or nothing) is noticed.
/// </summary>
public sealed partial class MutationTests
{
    public static TheoryData<string, string, int> Cases => new()
    {
        { "safetensors", "f32.safetensors", 3000 },
        { "safetensors", "dtypes.safetensors", 3000 },
        { "safetensors-index", "two-shards.json", 1500 },
        { "gguf", "mixed.gguf", 4000 },
        { "config-json", "llama.json", 1500 },
        { "config-json", "gpt2.json", 1000 },
        { "config-json", "bert.json", 1000 },
        { "config-json", "mistral-rope.json", 1000 },
        { "adapter-config", "lora-patterns.json", 1000 },
        { "adapter-config", "adalora_llama.json", 700 },
        { "adapter-config", "ia3_llama.json", 500 },
        { "adapter-config", "p_tuning_llama.json", 500 },
        { "adapter-config", "prefix_tuning_llama.json", 300 },
        { "adapter-config", "prompt_tuning_llama.json", 300 },
        { "adapter-config", "vera_llama.json", 300 },
        { "adapter-config", "fourierft_llama.json", 300 },
        { "adapter-config", "lokr_llama.json", 300 },
        { "adapter-config", "loha_llama.json", 300 },
        { "adapter-config", "oft_llama.json", 300 },
        { "adapter-config", "boft_llama.json", 300 },
        { "adapter-config", "ln_tuning_bert.json", 300 },
        { "adapter-config", "bottleneck_bert_parallel.json", 300 },
        { "adapter-config", "bitfit_bert_all.json", 300 },
        { "tokenizer-json", "gpt2-tiny.json", 1200 },
        { "tokenizer-json", "split-sequence.json", 1200 },
        { "tokenizer-json", "sentencepiece-tiny.json", 600 },
        { "vocab-txt", "bert-tiny.txt", 1000 },
        { "tokenizer-config", "llama.json", 600 },
        { "tokenizer-config", "chatml.json", 400 },
        { "special-tokens-map", "map.json", 400 },
        { "generation-config", "ids.json", 400 },
        { "inputs-json", "mask-types.json", 1500 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_mutation_is_read_correctly_or_refused_cleanly(string target, string seedFile, int count)
    {
        FuzzTarget t = FuzzTargets.Get(target);
        byte[] seed = Seeds.Read(target, seedFile);
        var gen = target switch
        {
            "gguf" => Mutations.Binary(seed, GgufFields.Of(seed)),
            "safetensors" => Mutations.Binary(seed, SafetensorsFields(seed)),
            "vocab-txt" => Mutations.Binary(seed),
            _ => Mutations.Json(seed),
        };
        var outcomes = new Dictionary<FuzzOutcome, int> { [FuzzOutcome.Accepted] = 0, [FuzzOutcome.Rejected] = 0 };
        Mutations.Sample(gen, count, seed: (ulong)StableHash(target + "/" + seedFile), bytes => outcomes[t.Execute(bytes)]++);
        Assert.True(outcomes[FuzzOutcome.Rejected] > 0, $"{target}/{seedFile}: no mutation was refused");
        Assert.True(outcomes[FuzzOutcome.Accepted] > 0, $"{target}/{seedFile}: no mutation was accepted");
    }

    [Theory]
    [InlineData("safetensors")]
    [InlineData("safetensors-index")]
    [InlineData("gguf")]
    [InlineData("config-json")]
    [InlineData("adapter-config")]
    [InlineData("tokenizer-json")]
    [InlineData("vocab-txt")]
    [InlineData("tokenizer-config")]
    [InlineData("special-tokens-map")]
    [InlineData("generation-config")]
    [InlineData("inputs-json")]
    public void Every_seed_is_accepted(string target)
    {
        FuzzTarget t = FuzzTargets.Get(target);
        foreach (string file in Seeds.Files(target))
            Assert.True(t.Execute(File.ReadAllBytes(file)) == FuzzOutcome.Accepted, $"seed {file} was refused");
    }

    // The 8-byte header length, then every number of the header JSON (data_offsets and shapes) as text.
    private static List<(int Offset, int Width)> SafetensorsFields(byte[] file)
    {
        var fields = new List<(int, int)> { (0, 8), (0, 4), (4, 4) };
        string header = Encoding.Latin1.GetString(file, 8, (int)BitConverter.ToUInt64(file, 0));
        foreach (Match m in Digits().Matches(header)) fields.Add((8 + m.Index, 1));
        return fields;
    }

    [GeneratedRegex(@"\d+")]
    private static partial Regex Digits();

    // string.GetHashCode is randomised per process: the seed must not be.
    private static uint StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return h;
    }
}
