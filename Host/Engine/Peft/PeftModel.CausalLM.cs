using PeftHost.Abstractions.Layers;
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

    /// <summary>
    /// A served request's prefill: runs the prompt of one sequence into <paramref name="cache"/> (batch 1, e.g.
    /// one row of a batch cache, <see cref="KvCache.Rows"/>) with one adapter, <paramref name="adapter"/> (null:
    /// the base model). A layer tuner's adapter acts through mixed-batch routing, so other adapters stay as they
    /// are; a prompt-learning adapter (made the active one) puts its virtual tokens first, as <see cref="CausalLMForward"/>
    /// does, and they take the cache's first positions. Returns the logits after the last prompt token
    /// [1, 1, vocab]; <paramref name="positions"/> is how many cache positions the sequence now fills (virtual
    /// tokens included): where its next token goes. The decoding steps after it need no prompt-learning adapter
    /// (the virtual tokens are in the cache): they run with <see cref="AdapterRouting.BaseModel"/> for such a row.
    /// </summary>
    /// <exception cref="KeyNotFoundException"><paramref name="adapter"/> is not an adapter of this model.</exception>
    /// <exception cref="InvalidOperationException">The base model is not a causal LM.</exception>
    public Tensor CausalLMPrefill(Tensor inputIds, KvCache cache, string? adapter, out long positions)
    {
        var causal = BaseModel as ICausalLM
            ?? throw new InvalidOperationException($"The base model {BaseModel.GetType().Name} is not a causal LM ({nameof(ICausalLM)}).");
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(cache);
        long length = inputIds.shape[^1];
        if (adapter is null || !IsPromptLearning(adapter))
        {
            positions = length;
            return Run(() => causal.Forward(inputIds, null, cache, 0, lastTokenOnly: true), [adapter ?? AdapterRouting.BaseModel]);
        }
        long used = 0;
        Tensor? logits = null;
        // The prompt comes from the active adapter: made active and run under the write lock, so nothing changes it in between.
        Write(() =>
        {
            if (!_active.SequenceEqual([adapter]))
            {
                _active = [adapter];
                ApplyActive();
            }
            logits = RunLocked(() =>
            {
                using var scope = NewDisposeScope();
                IPromptLearningModel prompt = ActivePromptLearning()
                    ?? throw new InvalidOperationException($"Adapter '{adapter}' is not a prompt-learning adapter of an enabled model.");
                Tensor virtualTokens = prompt.GetPrompt(1);
                long count = prompt.Kind == PromptKind.InputEmbeddings ? virtualTokens.shape[1] : virtualTokens.shape[3];
                used = count + length;
                if (prompt.Kind == PromptKind.InputEmbeddings)
                {
                    Tensor embeds = causal.EmbedInputs(inputIds);
                    return scope.MoveToOuter(causal.ForwardEmbeddings(cat([virtualTokens.to(embeds.dtype), embeds], 1), null, cache, 0, lastTokenOnly: true));
                }
                int layers = causal.Config.NumLayers;
                if (virtualTokens.shape[0] != 2L * layers)
                    throw new InvalidDataException($"The prefix holds keys and values for {virtualTokens.shape[0] / 2} layers; the model has {layers} (check the adapter's num_layers).");
                for (int i = 0; i < layers; i++) cache.Append(i, 0, virtualTokens[2 * i], virtualTokens[2 * i + 1]);
                return scope.MoveToOuter(causal.Forward(inputIds, null, cache, startPosition: count, lastTokenOnly: true));
            });
        });
        positions = used;
        return logits!;
    }

    /// <summary>The virtual tokens a prompt-learning adapter puts before every prompt (0 for other adapters and for null, the base model).</summary>
    /// <exception cref="KeyNotFoundException"><paramref name="adapter"/> is not an adapter of this model.</exception>
    public int VirtualTokens(string? adapter)
    {
        if (adapter is null) return 0;
        return Read(() => SlotOf(adapter).Model is IPromptLearningModel p ? Guard(SlotOf(adapter), "count virtual tokens", () => p.NumVirtualTokens(adapter)) : 0);
    }

    /// <summary>Whether an adapter is prompt learning (its tuner injects no layers).</summary>
    /// <exception cref="KeyNotFoundException"><paramref name="adapter"/> is not an adapter of this model.</exception>
    public bool IsPromptLearning(string adapter) => Read(() => SlotOf(adapter).Model is IPromptLearningModel);

    /// <summary>The peft_type of an adapter (LORA, IA3, PROMPT_TUNING, ...).</summary>
    /// <exception cref="KeyNotFoundException"><paramref name="adapter"/> is not an adapter of this model.</exception>
    public string PeftTypeOf(string adapter) => Read(() => SlotOf(adapter).PeftType);

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
