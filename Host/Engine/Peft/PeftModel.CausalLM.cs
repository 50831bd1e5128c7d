using PeftHost.Abstractions.Tuning;
using PeftHost.Models;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>The causal LM forward with the active adapter, prompt learning included (PEFT's <c>PeftModelForCausalLM.forward</c>).</summary>
public sealed partial class PeftModel
{
    /// <summary>
    /// Logits of a causal LM base model with the active adapters. Layer tuners (LoRA, IA3, ...) act
    /// inside the model. An active prompt-learning adapter adds its virtual tokens as PEFT does:
    /// prompt tuning and p-tuning prepend their embeddings to the input embeddings, and the logits
    /// cover them ([batch, virtual + seq, vocab]); prefix tuning passes per-layer key/value prefixes as
    /// past key values (no RoPE on them), the real tokens take the positions after the prefix, and
    /// the logits cover the real tokens only ([batch, seq, vocab]).
    /// </summary>
    /// <param name="inputIds">[batch, seq] token ids.</param>
    /// <param name="attentionMask">[batch, seq] for the real tokens (1 = token, 0 = padding); the virtual tokens are always attended.</param>
    /// <param name="adapterNames">Mixed-batch inference, PEFT's <c>adapter_names</c> (see <see cref="Run{T}"/>); layer tuners only.</param>
    /// <exception cref="InvalidOperationException">The base model is not a causal LM.</exception>
    /// <exception cref="ArgumentException"><paramref name="adapterNames"/> does not give one name per row.</exception>
    public Tensor CausalLMForward(Tensor inputIds, Tensor? attentionMask = null, IReadOnlyList<string>? adapterNames = null)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        CheckRows(inputIds, adapterNames, nameof(inputIds));
        var causal = BaseModel as ICausalLM
            ?? throw new InvalidOperationException($"The base model {BaseModel.GetType().Name} is not a causal LM ({nameof(ICausalLM)}).");
        return Run(() =>
        {
            IPromptLearningModel? prompt = ActivePromptLearning();
            if (prompt is null) return causal.Forward(inputIds, attentionMask);

            using var scope = NewDisposeScope();
            long batch = inputIds.shape[0];
            Tensor virtualTokens = prompt.GetPrompt(batch);
            long count = prompt.Kind == PromptKind.InputEmbeddings ? virtualTokens.shape[1] : virtualTokens.shape[3];
            // PEFT prefixes the mask with ones for the virtual tokens (only when a mask is given).
            Tensor? mask = attentionMask is null ? null
                : cat([ones([batch, count], dtype: attentionMask.dtype, device: attentionMask.device), attentionMask], 1);
            Tensor logits = prompt.Kind == PromptKind.InputEmbeddings
                ? PromptForward(causal, virtualTokens, inputIds, mask)
                : PrefixForward(causal, virtualTokens, inputIds, mask);
            return scope.MoveToOuter(logits);
        }, adapterNames);
    }

    private static Tensor PromptForward(ICausalLM causal, Tensor virtualTokens, Tensor inputIds, Tensor? mask)
    {
        Tensor embeds = causal.EmbedInputs(inputIds);
        return causal.ForwardEmbeddings(cat([virtualTokens.to(embeds.dtype), embeds], 1), mask);
    }

    // The prefix [layers * 2, batch, kv_heads, tokens, head_dim] fills a cache as transformers' past_key_values: layer i's key is 2i, its value 2i + 1.
    private static Tensor PrefixForward(ICausalLM causal, Tensor prefix, Tensor inputIds, Tensor? mask)
    {
        int layers = causal.Config.NumLayers;
        long count = prefix.shape[3];
        if (prefix.shape[0] != 2L * layers)
            throw new InvalidDataException($"The prefix holds keys and values for {prefix.shape[0] / 2} layers; the model has {layers} (check the adapter's num_layers).");
        using KvCache cache = causal.CreateCache(inputIds.shape[0], count + inputIds.shape[1]);
        for (int i = 0; i < layers; i++) cache.Append(i, 0, prefix[2 * i], prefix[2 * i + 1]);
        return causal.Forward(inputIds, mask, cache, startPosition: count);
    }

    // The prompt-learning tuner of the active adapter, if adapters are enabled and one is active.
    private IPromptLearningModel? ActivePromptLearning()
    {
        if (!_enabled) return null;
        foreach (TunerSlot slot in _slots)
            if (slot.Model is IPromptLearningModel p && _active.Any(a => _adapterTypes.TryGetValue(a, out string? t) && t == slot.PeftType)) return p;
        return null;
    }
}
