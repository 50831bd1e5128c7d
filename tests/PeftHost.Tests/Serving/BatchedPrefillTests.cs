using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Inference.Batching;
using PeftHost.Engine.Plugins;
using PeftHost.Models.Generation;
using Xunit;

namespace PeftHost.Tests.Serving;

/// <summary>
/// Requests admitted together start together: their prompts (of different lengths, each with its own adapter) run as one
/// right-padded batch, and every request then decodes the tokens it gets served alone through the single-sequence path
/// (the reference shares no code with the batching). A request that cannot start fails alone.
/// </summary>
public sealed class BatchedPrefillTests : IDisposable
{
    private const int MaxTokens = 8;
    private readonly ServingModels _models = new();
    private readonly PluginCatalog _catalog;

    public BatchedPrefillTests()
    {
        _catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = _models.Plugins, HotReload = false });
        _catalog.Scan();
    }

    public void Dispose()
    {
        _catalog.Dispose();
        _models.Dispose();
    }

    private TorchBatchDecoder Open(int rows) => TorchBatchDecoder.Open(new InferenceBackendOptions
    {
        ModelFolder = _models.Model,
        PluginsFolder = _models.Plugins,
        Adapters = [.. new[] { "sql", "chat", "ia3", "soft" }.Select(a => new AdapterSpec(a, _models.Folder(a)))],
    }, rows, _catalog);

    private static GenerationOptions Greedy => new() { MaxNewTokens = MaxTokens };

    [Fact]
    public void Prompts_started_together_decode_as_each_alone()
    {
        (string Text, string? Adapter)[] jobs = [("the quick brown fox jumps", "sql"), ("zz", "chat"), ("a b c d e f g h i j", null), ("hello", "ia3"), ("plugins reload", "soft"), ("x", "sql")];
        using TorchBatchDecoder decoder = Open(rows: jobs.Length);
        IReadOnlyList<StartOutcome> outcomes = decoder.StartMany([.. jobs.Select(j => new SequenceStart(_models.Encode(j.Text), j.Adapter, Greedy))]);
        Assert.All(outcomes, o => Assert.Null(o.Error));
        DecodeSequence[] sequences = [.. outcomes.Select(o => o.Sequence!)];
        Assert.Equal(jobs.Length, decoder.Running.Count);
        for (int step = 1; step < MaxTokens; step++) decoder.Step();
        for (int i = 0; i < jobs.Length; i++)
        {
            IReadOnlyList<int> prompt = _models.Encode(jobs[i].Text);
            string expected = _models.Reference(jobs[i].Adapter, prompt, MaxTokens).Text;
            IEnumerable<int> generated = sequences[i].Ids.Skip(prompt.Count).Select(t => (int)t).TakeWhile(t => !_models.Tokenizer.EosTokenIds.Contains(t));
            Assert.Equal(expected, _models.Tokenizer.Decode(generated, skipSpecialTokens: true));
        }
    }

    [Fact]
    public void A_request_that_cannot_start_fails_alone()
    {
        using TorchBatchDecoder decoder = Open(rows: 3);
        IReadOnlyList<StartOutcome> outcomes = decoder.StartMany(
        [
            new SequenceStart(_models.Encode("one"), "sql", Greedy),
            new SequenceStart([1, 99999], "sql", Greedy),
            new SequenceStart(_models.Encode("two"), "missing", Greedy),
            new SequenceStart(_models.Encode("three"), null, Greedy),
            new SequenceStart(_models.Encode("four"), "chat", Greedy),
        ]);
        Assert.NotNull(outcomes[0].Sequence);
        Assert.Contains("Token id 99999 is outside the model's vocabulary", Assert.IsType<ArgumentException>(outcomes[1].Error).Message);
        Assert.IsType<KeyNotFoundException>(outcomes[2].Error);
        Assert.NotNull(outcomes[3].Sequence);
        Assert.NotNull(outcomes[4].Sequence);
        Assert.Equal(3, decoder.Running.Count);
        IReadOnlyList<StartOutcome> full = decoder.StartMany([new SequenceStart(_models.Encode("five"), null, Greedy)]);
        Assert.Contains("All 3 rows are in use", Assert.IsType<InvalidOperationException>(full[0].Error).Message);
    }
}
