using System.Text.Json.Nodes;
using Parquet.Serialization;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Training.Data;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>Rows recognised by their fields, labels as TRL builds them, padding, packing, shuffling, and the errors of malformed rows.</summary>
public sealed class DataTests : IDisposable
{
    private const string ChatMl = @"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    private readonly ScratchFolder _dir = new();
    private readonly string _model;
    private readonly ITextTokenizer _tokenizer;

    public DataTests()
    {
        _model = Path.Combine(_dir.Path, "tiny");
        ModelPresets.Write("llama", "tiny", _model, seed: 0);
        string configPath = Path.Combine(_model, "tokenizer_config.json");
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(configPath))!;
        config["chat_template"] = ChatMl;
        File.WriteAllText(configPath, config.ToJsonString());
        _tokenizer = TokenizerLoader.FromDirectory(_model);
    }

    public void Dispose() => _dir.Dispose();

    private ExampleEncoder Encoder(int maxLength = 1024, bool completionOnly = true, bool assistantOnly = false) =>
        new(TaskKind.CausalLM, () => _tokenizer, 256, maxLength, completionOnly, assistantOnly);

    private string Jsonl(params string[] lines)
    {
        string path = Path.Combine(_dir.Path, Guid.NewGuid().ToString("N")[..8] + ".jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private int Eos => _tokenizer.EosTokenIds[0];

    [Fact]
    public void Prompt_completion_rows_count_the_completion_and_eos_only()
    {
        string file = Jsonl("{\"prompt\": \"abc=\", \"completion\": \"ABC\"}");
        TrainingExample e = TrainingDataset.Load(file, Encoder(), packing: false).Examples[0];
        int[] prompt = [.. _tokenizer.Encode("abc=")];
        int[] completion = [.. _tokenizer.Encode("ABC", addSpecialTokens: false), Eos];
        Assert.Equal([.. prompt, .. completion], e.InputIds);
        Assert.Equal([.. Enumerable.Repeat(-100, prompt.Length), .. completion], e.Labels!);
        Assert.Equal(prompt.Length, e.PromptLength);
        Assert.Equal("ABC", e.Reference);

        TrainingExample all = TrainingDataset.Load(file, Encoder(completionOnly: false), packing: false).Examples[0];
        Assert.Equal(all.InputIds, all.Labels);
    }

    [Fact]
    public void Text_rows_end_with_eos_and_are_truncated_to_max_length()
    {
        string file = Jsonl("{\"text\": \"hello world\"}");
        TrainingExample e = TrainingDataset.Load(file, Encoder(), packing: false).Examples[0];
        Assert.Equal([.. _tokenizer.Encode("hello world"), Eos], e.InputIds);
        Assert.Equal(e.InputIds, e.Labels);
        TrainingExample cut = TrainingDataset.Load(file, Encoder(maxLength: 4), packing: false).Examples[0];
        Assert.Equal(e.InputIds[..4], cut.InputIds);
    }

    [Fact]
    public void Pre_tokenised_rows_keep_labels_and_mask_out_padding()
    {
        string file = Jsonl("{\"input_ids\": [5, 6, 7, 8], \"labels\": [-100, 6, 7, -100]}", "{\"input_ids\": [9, 10, 11], \"attention_mask\": [1, 1, 0]}");
        var examples = TrainingDataset.Load(file, Encoder(), packing: false).Examples;
        Assert.Equal([-100, 6, 7, -100], examples[0].Labels!);
        Assert.Equal([9, 10, -100], examples[1].Labels!);

        using Batch batch = DataCollator.Collate(examples, TaskKind.CausalLM, padTokenId: 0);
        Assert.Equal(new long[] { 5, 6, 7, 8, 9, 10, 11, 0 }, batch.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 0, 0 }, batch.AttentionMask!.data<long>().ToArray());
        Assert.Equal(new long[] { -100, 6, 7, -100, 9, 10, -100, -100 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(6, batch.Tokens);
    }

    [Fact]
    public void Chat_rows_use_the_chat_template_and_assistant_only_loss_counts_assistant_turns()
    {
        string file = Jsonl("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"HELLO\"}, {\"role\": \"user\", \"content\": \"again\"}, {\"role\": \"assistant\", \"content\": \"AGAIN\"}]}");
        TrainingExample all = TrainingDataset.Load(file, Encoder(), packing: false).Examples[0];
        string rendered = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHELLO<|im_end|>\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\nAGAIN<|im_end|>\n";
        Assert.Equal(rendered, _tokenizer.Decode(all.InputIds));
        Assert.Equal(all.InputIds, all.Labels);

        TrainingExample assistant = TrainingDataset.Load(file, Encoder(assistantOnly: true), packing: false).Examples[0];
        Assert.Equal(rendered, _tokenizer.Decode(assistant.InputIds));
        string counted = _tokenizer.Decode(assistant.Labels!.Where(l => l != -100));
        Assert.Equal("HELLO<|im_end|>\nAGAIN<|im_end|>\n", counted);
    }

    [Theory]
    [InlineData("{\"input_ids\": [1, 2, \"x\"]}", "line 2, field 'input_ids': entry 2 is \"x\", not an integer.")]
    [InlineData("{\"input_ids\": [1, 2], \"labels\": [1]}", "line 2, field 'labels': has 1 entries, input_ids 2; they must be the same length.")]
    [InlineData("{\"input_ids\": [1, 999]}", "line 2, field 'input_ids': entry 1 is 999, outside the model's vocabulary [0, 256).")]
    [InlineData("{\"question\": \"q\"}", "line 2: no recognised fields (found: question)")]
    [InlineData("{\"prompt\": \"q\"}", "line 2, field 'completion': is missing (found fields: prompt).")]
    [InlineData("{\"text\": 5}", "line 2, field 'text': must be a string, got number.")]
    [InlineData("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "line 2, field 'messages[0].role': 'robot' is not one of system, user, assistant, tool.")]
    [InlineData("[1, 2]", "line 2: expected a JSON object per line, got Array.")]
    [InlineData("{\"text\": ", "line 2: invalid JSON")]
    public void A_malformed_row_is_an_error_naming_file_line_and_field(string row, string message)
    {
        string file = Jsonl("{\"text\": \"fine\"}", row, "{\"text\": \"fine too\"}");
        var e = Assert.Throws<DataFormatException>(() => TrainingDataset.Load(file, Encoder(), packing: false));
        Assert.StartsWith($"{file}: {message}", e.Message);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void Packed_documents_never_attend_to_each_other()
    {
        string file = Jsonl("{\"input_ids\": [3, 4, 5, 6, 7]}", "{\"input_ids\": [8, 9, 10]}", "{\"input_ids\": [11, 12, 13, 14]}");
        TrainingDataset packed = TrainingDataset.Load(file, Encoder(maxLength: 8), packing: true);
        Assert.Equal(2, packed.Examples.Count); // 5 + 3 fit in 8; the third starts a row
        TrainingExample row = packed.Examples[0];
        Assert.Equal([3, 4, 5, 6, 7, 8, 9, 10], row.InputIds);
        Assert.Equal([1, 1, 1, 1, 1, 2, 2, 2], row.SequenceIds!);
        Assert.Equal([0, 1, 2, 3, 4, 0, 1, 2], row.PositionIds!);
        Assert.Equal(-100, row.Labels![5]); // document 2's first token is not predicted from document 1

        (_, nn.Module module) = ModelFactory.Load(_model);
        using (module)
        using (no_grad())
        {
            using Batch batch = DataCollator.Collate(packed.Examples, TaskKind.CausalLM, 0);
            using Tensor logits = ((IPackedCausalLM)module).ForwardPacked(batch.InputIds, batch.PositionIds!, batch.SequenceIds!);
            using Tensor first = ((ICausalLM)module).Forward(tensor(new long[] { 3, 4, 5, 6, 7 }, [1, 5]));
            using Tensor second = ((ICausalLM)module).Forward(tensor(new long[] { 8, 9, 10 }, [1, 3]));
            Assert.True(Tensors.MaxAbsDiff(logits[0].narrow(0, 0, 5), first[0]) < 1e-5);
            Assert.True(Tensors.MaxAbsDiff(logits[0].narrow(0, 5, 3), second[0]) < 1e-5);
        }
    }

    [Fact]
    public async Task Parquet_rows_are_read_like_jsonl_rows()
    {
        string path = Path.Combine(_dir.Path, "rows.parquet");
        var rows = new List<ParquetRow> { new() { prompt = "abc=", completion = "ABC" }, new() { prompt = "xy=", completion = "XY" } };
        await using (FileStream s = File.Create(path)) await ParquetSerializer.SerializeAsync(rows, s, cancellationToken: TestContext.Current.CancellationToken);
        var fromParquet = TrainingDataset.Load(path, Encoder(), packing: false).Examples;
        var fromJsonl = TrainingDataset.Load(Jsonl("{\"prompt\": \"abc=\", \"completion\": \"ABC\"}", "{\"prompt\": \"xy=\", \"completion\": \"XY\"}"), Encoder(), packing: false).Examples;
        Assert.Equal(fromJsonl.Select(e => e.InputIds), fromParquet.Select(e => e.InputIds));
        Assert.Equal(fromJsonl.Select(e => e.Labels), fromParquet.Select(e => e.Labels));

        string ids = Path.Combine(_dir.Path, "ids.parquet");
        await using (FileStream s = File.Create(ids))
            await ParquetSerializer.SerializeAsync(new List<IdsRow> { new() { input_ids = [1, 2, 3] } }, s, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal([1, 2, 3], TrainingDataset.Load(ids, Encoder(), packing: false).Examples[0].InputIds);
    }

    [Fact]
    public void Classification_rows_take_integer_labels_or_label2id_names()
    {
        var encoder = new ExampleEncoder(TaskKind.SequenceClassification, () => _tokenizer, 256, 64, true, false, numLabels: 2,
            label2Id: new Dictionary<string, int> { ["negative"] = 0, ["positive"] = 1 });
        string file = Jsonl("{\"text\": \"good\", \"label\": \"positive\"}", "{\"text\": \"bad\", \"label\": 0}");
        var examples = TrainingDataset.Load(file, encoder, packing: false).Examples;
        Assert.Equal(new long?[] { 1, 0 }, examples.Select(e => e.ClassLabel));
        string bad = Jsonl("{\"text\": \"meh\", \"label\": \"neutral\"}");
        Assert.Contains("line 1, field 'label': 'neutral' is not a label of the model (config.json label2id: negative, positive)",
            Assert.Throws<DataFormatException>(() => TrainingDataset.Load(bad, encoder, packing: false)).Message);
        var regression = new ExampleEncoder(TaskKind.SequenceClassification, () => _tokenizer, 256, 64, true, false, numLabels: 1);
        Assert.Equal(0.25f, TrainingDataset.Load(Jsonl("{\"text\": \"x\", \"label\": 0.25}"), regression, packing: false).Examples[0].Target);
    }

    [Fact]
    public void Epoch_order_is_a_seeded_permutation_per_epoch()
    {
        int[] a = EpochOrder.For(50, 0, 42, shuffle: true);
        Assert.Equal(a, EpochOrder.For(50, 0, 42, shuffle: true));
        Assert.NotEqual(a, EpochOrder.For(50, 1, 42, shuffle: true));
        Assert.NotEqual(a, EpochOrder.For(50, 0, 7, shuffle: true));
        Assert.Equal(Enumerable.Range(0, 50), a.Order());
        Assert.Equal(Enumerable.Range(0, 50), EpochOrder.For(50, 3, 42, shuffle: false));
    }

    internal sealed class ParquetRow
    {
        public string prompt { get; set; } = "";

        public string completion { get; set; } = "";
    }

    internal sealed class IdsRow
    {
        public List<long> input_ids { get; set; } = [];
    }
}
