using System.Text.Json.Nodes;
using PeftHost.Models;
using PeftHost.Models.Layers;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Models;

/// <summary>
/// The per-row forward (continuous batching): sequences at different positions in one batch give, row for row,
/// the logits each sequence gets alone with its own cache (the single-position API, itself checked against transformers).
/// </summary>
public class RowPositionTests
{
    // Three prompts of different lengths, and the tokens fed after them (teacher forcing: the same ids either way).
    private static readonly long[][] Prompts = [[47, 211, 38, 53, 204, 116, 152], [249, 143], [17, 88, 3, 120, 9]];
    private static readonly long[][] Next = [[5, 77, 190, 64], [130, 2, 250, 31], [99, 45, 12, 200]];

    // Logits of each decode step of one sequence alone ([steps][vocab]).
    private static List<float[]> Alone(ICausalLM lm, long[] prompt, long[] next)
    {
        using var cache = lm.CreateCache(1, 64);
        var steps = new List<float[]>();
        using (no_grad())
        {
            using Tensor p = torch.tensor(prompt).unsqueeze(0);
            using Tensor first = lm.Forward(p, null, cache, 0, lastTokenOnly: true);
            steps.Add(first.reshape(-1).data<float>().ToArray());
            for (int i = 0; i < next.Length; i++)
            {
                using Tensor t = torch.tensor(new[] { next[i] }).unsqueeze(0);
                using Tensor logits = lm.Forward(t, null, cache, prompt.Length + i, lastTokenOnly: true);
                steps.Add(logits.reshape(-1).data<float>().ToArray());
            }
        }
        return steps;
    }

    // The same sequences together: each prompt into its own row, then every step for all rows at their own positions.
    // With finishFirst, sequence 0 leaves after its prompt and the last row moves into its place (a scheduler's compaction).
    // With paddedPrefill, the prompts run as one batch, right-padded to the longest (a batched prefill).
    private static List<float[]>?[] Batched(ICausalLM lm, bool finishFirst, bool paddedPrefill = false)
    {
        int n = Prompts.Length;
        var result = Enumerable.Range(0, n).Select(_ => (List<float[]>?)new List<float[]>()).ToArray();
        using var cache = lm.CreateCache(n, 64);
        var rowOf = Enumerable.Range(0, n).ToDictionary(s => s, s => s);
        using (no_grad())
        {
            if (paddedPrefill)
            {
                int longest = Prompts.Max(p => p.Length);
                // The padding is an arbitrary valid id: no real token attends to it, and the next token overwrites its keys.
                long[] padded = [.. Prompts.SelectMany(p => p.Concat(Enumerable.Repeat(200L, longest - p.Length)))];
                using Tensor ids = torch.tensor(padded).view(n, longest);
                using Tensor first = lm.ForwardRows(ids, cache, new long[n], lastTokenOnly: true, rowLengths: [.. Prompts.Select(p => (long)p.Length)]);
                Assert.Equal([n, 1, lm.Config.VocabSize], first.shape);
                for (int r = 0; r < n; r++)
                {
                    result[r]!.Add(first[r].reshape(-1).data<float>().ToArray());
                    Assert.Equal(Prompts[r].Length, cache.RowLength(r));
                }
            }
            for (int r = 0; r < n && !paddedPrefill; r++)
            {
                using KvCache row = cache.Rows(r, 1);
                using Tensor p = torch.tensor(Prompts[r]).unsqueeze(0);
                using Tensor first = lm.Forward(p, null, row, 0, lastTokenOnly: true);
                result[r]!.Add(first.reshape(-1).data<float>().ToArray());
                Assert.Equal(Prompts[r].Length, cache.RowLength(r));
            }
            if (finishFirst)
            {
                cache.MoveRow(n - 1, 0, Prompts[n - 1].Length);
                Assert.Equal(Prompts[n - 1].Length, cache.RowLength(0));
                rowOf.Remove(0);
                rowOf[n - 1] = 0;
                result[0] = null;
            }
            int rows = rowOf.Count;
            using KvCache live = cache.Rows(0, rows);
            for (int i = 0; i < Next[0].Length; i++)
            {
                long[] ids = new long[rows], starts = new long[rows];
                foreach ((int s, int r) in rowOf)
                {
                    ids[r] = Next[s][i];
                    starts[r] = Prompts[s].Length + i;
                }
                using Tensor t = torch.tensor(ids).unsqueeze(1);
                using Tensor logits = lm.ForwardRows(t, live, starts, lastTokenOnly: true);
                foreach ((int s, int r) in rowOf)
                {
                    result[s]!.Add(logits[r].reshape(-1).data<float>().ToArray());
                    Assert.Equal(starts[r] + 1, cache.RowLength(r));
                }
            }
        }
        return result;
    }

    private static void AssertClose(List<float[]> expected, List<float[]> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            for (int j = 0; j < expected[i].Length; j++)
                Assert.True(Math.Abs(expected[i][j] - actual[i][j]) < 1e-5, $"step {i}, logit {j}: {expected[i][j]} alone, {actual[i][j]} in the batch");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Rows_at_different_positions_equal_each_sequence_alone(string arch)
    {
        (_, nn.Module model) = ModelPresets.Create(arch, "tiny", seed: 3);
        using (model)
        {
            var lm = (ICausalLM)model;
            List<float[]>?[] batched = Batched(lm, finishFirst: false);
            for (int s = 0; s < Prompts.Length; s++) AssertClose(Alone(lm, Prompts[s], Next[s]), batched[s]!);
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Prompts_of_different_lengths_prefilled_as_one_padded_batch_equal_each_sequence_alone(string arch)
    {
        (_, nn.Module model) = ModelPresets.Create(arch, "tiny", seed: 5);
        using (model)
        {
            var lm = (ICausalLM)model;
            List<float[]>?[] batched = Batched(lm, finishFirst: false, paddedPrefill: true);
            for (int s = 0; s < Prompts.Length; s++) AssertClose(Alone(lm, Prompts[s], Next[s]), batched[s]!);
        }
    }

    [Fact]
    public void A_row_moved_into_a_freed_row_decodes_on_as_before()
    {
        (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 4);
        using (model)
        {
            var lm = (ICausalLM)model;
            List<float[]>?[] batched = Batched(lm, finishFirst: true);
            Assert.Null(batched[0]);
            for (int s = 1; s < Prompts.Length; s++) AssertClose(Alone(lm, Prompts[s], Next[s]), batched[s]!);
        }
    }

    [Fact]
    public void Mistral_sliding_window_holds_per_row()
    {
        using var dir = new ScratchFolder();
        JsonObject config = ModelFolders.LlamaConfig(j => { j["model_type"] = "mistral"; j["architectures"] = new JsonArray("MistralForCausalLM"); j["sliding_window"] = 4; });
        using nn.Module model = ModelFolders.Random(config, dir.Path);
        var lm = (ICausalLM)model;
        List<float[]>?[] batched = Batched(lm, finishFirst: false);
        for (int s = 0; s < Prompts.Length; s++) AssertClose(Alone(lm, Prompts[s], Next[s]), batched[s]!);
    }

    [Fact]
    public void Row_positions_are_checked_before_libtorch()
    {
        (_, nn.Module model) = ModelPresets.Create("llama", "tiny", seed: 3);
        using (model)
        using (no_grad())
        {
            var lm = (ICausalLM)model;
            using var cache = lm.CreateCache(2, 8);
            using Tensor ids = torch.tensor(new long[] { 1, 2 }).unsqueeze(1);
            var count = Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [0]));
            Assert.Equal("rowStarts", count.ParamName);
            Assert.Contains("1 positions for a batch of 2 rows", count.Message);
            var context = Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [0, 128]));
            Assert.Contains("row 1: positions 128 .. 128", context.Message);
            Assert.Contains("context of 128 positions", context.Message);
            var room = Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [0, 8]));
            Assert.Contains("holds 8 positions", room.Message);
            Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [-1, 0]));
            var lengths = Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [0, 0], rowLengths: [1, 2]));
            Assert.Equal("rowLengths", lengths.ParamName);
            Assert.Contains("rowLengths[1] is 2; expected 1 to the batch's 1 tokens per row", lengths.Message);
            Assert.Throws<ModelInputException>(() => lm.ForwardRows(ids, cache, [0, 0], rowLengths: [1]));
        }
    }
}
