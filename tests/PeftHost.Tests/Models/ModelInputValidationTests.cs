using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Models.Generation;
using PeftHost.Models.Layers;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Models;

/// <summary>
/// Inputs chosen to break each model entry point: every one is refused with a ModelInputException naming the
/// parameter before libtorch sees it (no ExternalException, no read outside a table), and a valid call still runs.
/// </summary>
public sealed class ModelInputValidationTests
{
    public static TheoryData<string> CausalArchitectures => ["llama", "gpt2"];

    private static (ICausalLM Model, nn.Module Module) Causal(string arch)
    {
        (_, nn.Module module) = ModelPresets.Create(arch, "tiny", seed: 3);
        module.eval();
        return ((ICausalLM)module, module);
    }

    private static ModelInputException Refused(Action call, string parameter, string fragment)
    {
        using var _ = no_grad();
        var e = Assert.Throws<ModelInputException>(call);
        Assert.Equal(parameter, e.ParamName);
        Assert.Contains(fragment, e.Message);
        return e;
    }

    [Theory]
    [MemberData(nameof(CausalArchitectures))]
    public void Causal_forward_refuses_token_ids_outside_the_vocabulary_or_of_the_wrong_shape_or_dtype(string arch)
    {
        (ICausalLM m, nn.Module module) = Causal(arch);
        using (module)
        {
            int vocab = m.Config.VocabSize;
            using Tensor tooBig = tensor(new long[,] { { 1, 2, vocab } });
            Refused(() => m.Forward(tooBig), "inputIds", $"inputIds[0, 2] is {vocab}, outside the vocabulary [0, {vocab})");
            using Tensor negative = tensor(new long[,] { { -1, 2 } });
            Refused(() => m.Forward(negative), "inputIds", "is -1");
            Refused(() => m.EmbedInputs(negative), "inputIds", "is -1");
            using Tensor huge = tensor(new long[,] { { long.MaxValue } });
            Refused(() => m.Forward(huge), "inputIds", "outside the vocabulary");
            using Tensor floats = tensor(new float[,] { { 1, 2 } });
            Refused(() => m.Forward(floats), "inputIds", "expected int64 token ids");
            using Tensor flat = tensor(new long[] { 1, 2 });
            Refused(() => m.Forward(flat), "inputIds", "expected [batch, seq] token ids");
            using Tensor empty = zeros([1, 0], ScalarType.Int64);
            Refused(() => m.Forward(empty), "inputIds", "batch and seq at least 1");
            using Tensor noBatch = zeros([0, 3], ScalarType.Int64);
            Refused(() => m.Forward(noBatch), "inputIds", "batch and seq at least 1");
            Refused(() => m.Forward(null!), "inputIds", "is null");
            using Tensor ok = tensor(new long[,] { { 1, 2, vocab - 1 } });
            using (no_grad())
            using (Tensor logits = m.Forward(ok)) Assert.Equal(new long[] { 1, 3, vocab }, logits.shape);
        }
    }

    [Theory]
    [MemberData(nameof(CausalArchitectures))]
    public void Causal_forward_refuses_sequences_longer_than_the_context(string arch)
    {
        (ICausalLM m, nn.Module module) = Causal(arch);
        using (module)
        {
            int context = m.Config.MaxPositions;
            using Tensor tooLong = zeros([1, context + 1], ScalarType.Int64);
            Refused(() => m.Forward(tooLong), "startPosition", $"exceed the model's context of {context} positions");
            using Tensor two = zeros([1, 2], ScalarType.Int64);
            Refused(() => m.Forward(two, startPosition: context - 1), "startPosition", $"positions {context - 1} .. {context}");
            Refused(() => m.Forward(two, startPosition: -1), "startPosition", "is -1");
            using Tensor full = zeros([1, context], ScalarType.Int64);
            using (no_grad())
            using (Tensor logits = m.Forward(full, lastTokenOnly: true)) Assert.Equal(1, logits.shape[1]);
        }
    }

    [Theory]
    [MemberData(nameof(CausalArchitectures))]
    public void Causal_forward_refuses_attention_masks_of_the_wrong_shape_or_values(string arch)
    {
        (ICausalLM m, nn.Module module) = Causal(arch);
        using (module)
        {
            using Tensor ids = tensor(new long[,] { { 1, 2, 3 }, { 4, 5, 6 } });
            using Tensor shortMask = ones([2, 2], ScalarType.Int64);
            Refused(() => m.Forward(ids, shortMask), "attentionMask", "expected [2, 3]");
            using Tensor oneRow = ones([1, 3], ScalarType.Int64);
            Refused(() => m.Forward(ids, oneRow), "attentionMask", "expected [2, 3]");
            using Tensor cube = ones([2, 3, 1], ScalarType.Int64);
            Refused(() => m.Forward(ids, cube), "attentionMask", "expected [2, 3]");
            using Tensor twos = tensor(new long[,] { { 1, 1, 2 }, { 1, 1, 1 } });
            Refused(() => m.Forward(ids, twos), "attentionMask", "values other than 0 and 1");
            using Tensor half = tensor(new float[,] { { 1, 0.5f, 1 }, { 1, 1, 1 } });
            Refused(() => m.Forward(ids, half), "attentionMask", "values other than 0 and 1");
            using Tensor nan = tensor(new float[,] { { 1, float.NaN, 1 }, { 1, 1, 1 } });
            Refused(() => m.Forward(ids, nan), "attentionMask", "values other than 0 and 1");
            using Tensor good = tensor(new bool[,] { { true, true, true }, { false, true, true } });
            using (no_grad())
            using (Tensor logits = m.Forward(ids, good)) Assert.Equal(2, logits.shape[0]);
        }
    }

    [Theory]
    [MemberData(nameof(CausalArchitectures))]
    public void Causal_forward_refuses_a_cache_that_does_not_fit(string arch)
    {
        (ICausalLM m, nn.Module module) = Causal(arch);
        (ICausalLM other, nn.Module otherModule) = Causal(arch == "llama" ? "gpt2" : "llama");
        using (module)
        using (otherModule)
        {
            using Tensor ids = tensor(new long[,] { { 1, 2, 3 } });
            using (KvCache small = m.CreateCache(1, 2))
                Refused(() => m.Forward(ids, cache: small), "cache", "holds 2 positions; writing 3 at position 0");
            using (KvCache batch2 = m.CreateCache(2, 8))
                Refused(() => m.Forward(ids, cache: batch2), "cache", "made for batch 2");
            using (KvCache foreign = other.CreateCache(1, 8))
                Refused(() => m.Forward(ids, cache: foreign), "cache", "create it with the model's CreateCache");
            KvCache gone = m.CreateCache(1, 8);
            gone.Dispose();
            Refused(() => m.Forward(ids, cache: gone), "cache", "has been disposed");
            Refused(() => m.CreateCache(0, 8), "batch", "at least 1");
            Refused(() => m.CreateCache(1, -5), "capacity", "at least 1");
            using KvCache fits = m.CreateCache(1, 4);
            using (no_grad())
            using (Tensor logits = m.Forward(ids, cache: fits)) Assert.Equal(3, fits.Length);
        }
    }

    [Theory]
    [MemberData(nameof(CausalArchitectures))]
    public void Forward_from_embeddings_refuses_wrong_hidden_size_dtype_or_rank(string arch)
    {
        (ICausalLM m, nn.Module module) = Causal(arch);
        using (module)
        {
            int hidden = m.Config.HiddenSize;
            using Tensor wide = zeros([1, 2, hidden + 1]);
            Refused(() => m.ForwardEmbeddings(wide), "inputsEmbeds", $"expected [batch, seq, {hidden}]");
            using Tensor flat = zeros([2, hidden]);
            Refused(() => m.ForwardEmbeddings(flat), "inputsEmbeds", $"expected [batch, seq, {hidden}]");
            using Tensor doubles = zeros([1, 2, hidden], ScalarType.Float64);
            Refused(() => m.ForwardEmbeddings(doubles), "inputsEmbeds", "the model's weights are Float32");
            using Tensor good = zeros([1, 2, hidden]);
            using Tensor mask = ones([1, 3], ScalarType.Int64);
            Refused(() => m.ForwardEmbeddings(good, mask), "attentionMask", "expected [1, 2]");
            using (no_grad())
            using (Tensor logits = m.ForwardEmbeddings(good)) Assert.Equal(2, logits.shape[1]);
        }
    }

    [Fact]
    public void Sequence_classification_refuses_ids_token_types_masks_and_lengths_out_of_range()
    {
        (ModelConfig config, nn.Module module) = ModelPresets.Create("bert", "tiny", seed: 4);
        using (module)
        {
            module.eval();
            var m = (ISequenceClassifier)module;
            var bert = (BertConfig)config;
            using Tensor ids = tensor(new long[,] { { 2, 7, 3 } });
            using Tensor badId = tensor(new long[,] { { 2, bert.VocabSize, 3 } });
            Refused(() => m.Forward(badId), "inputIds", "outside the vocabulary");
            using Tensor badType = tensor(new long[,] { { 0, bert.TypeVocabSize, 0 } });
            Refused(() => m.Forward(ids, tokenTypeIds: badType), "tokenTypeIds", $"outside [0, {bert.TypeVocabSize})");
            using Tensor shortTypes = zeros([1, 2], ScalarType.Int64);
            Refused(() => m.Forward(ids, tokenTypeIds: shortTypes), "tokenTypeIds", "expected [1, 3]");
            using Tensor floatTypes = zeros([1, 3]);
            Refused(() => m.Forward(ids, tokenTypeIds: floatTypes), "tokenTypeIds", "expected int64");
            using Tensor badMask = tensor(new long[,] { { 1, 3, 1 } });
            Refused(() => m.Forward(ids, badMask), "attentionMask", "values other than 0 and 1");
            using Tensor tooLong = zeros([1, bert.MaxPositions + 1], ScalarType.Int64);
            Refused(() => m.Forward(tooLong), "inputIds", $"context of {bert.MaxPositions} positions");
            using Tensor mask = tensor(new long[,] { { 1, 1, 0 } });
            using (no_grad())
            using (Tensor logits = m.Forward(ids, mask)) Assert.Equal(new long[] { 1, bert.NumLabels }, logits.shape);
        }
    }

    [Fact]
    public void Generation_refuses_prompt_ids_and_settings_out_of_range_and_stops_at_the_context()
    {
        (ICausalLM m, nn.Module module) = Causal("gpt2");
        using (module)
        {
            int vocab = m.Config.VocabSize;
            void Generate(IReadOnlyList<long> prompt, GenerationOptions options) => _ = TokenGenerator.Generate(m, prompt, options).ToList();
            Refused(() => Generate([1, vocab], new GenerationOptions()), "prompt", $"prompt[1] is {vocab}");
            Refused(() => Generate([], new GenerationOptions()), "prompt", "empty");
            Refused(() => Generate([1], new GenerationOptions { DoSample = true, Temperature = double.NaN }), "options", "temperature");
            Refused(() => Generate([1], new GenerationOptions { TopK = -1 }), "options", "top_k");
            Refused(() => Generate([1], new GenerationOptions { TopP = 1.5 }), "options", "top_p");
            Refused(() => Generate([1], new GenerationOptions { RepetitionPenalty = 0 }), "options", "repetition_penalty");
            Refused(() => Generate([1], new GenerationOptions { MaxNewTokens = 0 }), "options", "max_new_tokens is 0");
            // A request past the context is refused before the first token, with how many new tokens fit.
            int context = m.Config.MaxPositions;
            var prompt = Enumerable.Repeat(1L, context - 2).ToList();
            Refused(() => TokenGenerator.Generate(m, prompt, new GenerationOptions { MaxNewTokens = 5 }).GetEnumerator().MoveNext(), "options",
                $"{context - 2} prompt tokens + max_new_tokens 5 exceed the model's context of {context} positions (config max_position_embeddings); ask for at most 2 new tokens");
            Assert.Equal(2, TokenGenerator.Generate(m, prompt, new GenerationOptions { MaxNewTokens = 2 }).Count());
        }
    }
}
