using PeftHost.Models.Config;
using PeftHost.Models.Generation;
using PeftHost.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>
/// The checks every public model entry point runs on its inputs before libtorch sees them, so that a bad
/// input is a <see cref="ModelInputException"/> naming the parameter instead of a native error (or, for an
/// out-of-range id on some builds, a read outside the embedding table).
/// </summary>
public static class ModelInputValidator
{
    /// <summary>Token ids: a [batch, seq] int64 or int32 tensor on the model's device, batch and seq at least 1, every id in [0, vocab).</summary>
    public static void TokenIds(Tensor? ids, int vocabSize, Device modelDevice, string parameter = "inputIds")
    {
        if (ids is null) throw new ModelInputException(parameter, $"{parameter} is null; expected [batch, seq] token ids.");
        if (ids.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ModelInputException(parameter, $"{parameter} is {ids.dtype}; expected int64 token ids.");
        Shape(ids, parameter, "[batch, seq] token ids");
        SameDevice(ids, modelDevice, parameter);
        long min, max;
        using (Tensor lo = ids.min()) min = lo.item<long>();
        using (Tensor hi = ids.max()) max = hi.item<long>();
        if (min < 0 || max >= vocabSize)
        {
            long bad = min < 0 ? min : max;
            using Tensor where = ids.eq(bad).nonzero();
            long[] at = [.. Enumerable.Range(0, (int)where.shape[1]).Select(d => where[0, d].item<long>())];
            throw new ModelInputException(parameter, $"{parameter}[{string.Join(", ", at)}] is {bad}, outside the vocabulary [0, {vocabSize}) of the model (config vocab_size).");
        }
    }

    /// <summary>Input embeddings: [batch, seq, hidden] of the model's dtype and device.</summary>
    public static void Embeddings(Tensor? embeds, int hiddenSize, ScalarType modelDType, Device modelDevice, string parameter = "inputsEmbeds")
    {
        if (embeds is null) throw new ModelInputException(parameter, $"{parameter} is null; expected [batch, seq, hidden] embeddings.");
        if (embeds.dim() != 3 || embeds.shape[0] < 1 || embeds.shape[1] < 1 || embeds.shape[2] != hiddenSize)
            throw new ModelInputException(parameter, $"{parameter} has shape [{string.Join(", ", embeds.shape)}]; expected [batch, seq, {hiddenSize}] (batch and seq at least 1).");
        if (embeds.dtype != modelDType)
            throw new ModelInputException(parameter, $"{parameter} is {embeds.dtype}; the model's weights are {modelDType}.");
        SameDevice(embeds, modelDevice, parameter);
    }

    /// <summary>Positions start .. start + length must fit the model's context (<c>max_position_embeddings</c>).</summary>
    public static void Positions(long start, long length, int maxPositions, string parameter = "startPosition")
    {
        if (start < 0) throw new ModelInputException(parameter, $"{parameter} is {start}; expected 0 or more.");
        if (start + length > maxPositions)
            throw new ModelInputException(parameter, $"positions {start} .. {start + length - 1} ({parameter} {start} + {length} tokens) exceed the model's context of {maxPositions} positions (config max_position_embeddings).");
    }

    /// <summary>
    /// A per-row forward's inputs (ForwardRows): <see cref="RowPositions"/> within <paramref name="maxPositions"/>, and a KV
    /// cache that holds every row's history up to the furthest start (<see cref="Cache"/>).
    /// </summary>
    public static void RowForward(IReadOnlyList<long> rowStarts, long batch, long length, int maxPositions, KvCache? cache,
        int layers, int kvHeads, int headDim, Tensor reference, IReadOnlyList<long>? rowLengths = null)
    {
        RowPositions(rowStarts, batch, length, maxPositions);
        RowLengths(rowLengths, batch, length);
        if (cache is null) throw new ModelInputException(nameof(cache), "A per-row forward needs a KV cache (each row is written at its own position).");
        Cache(cache, batch, rowStarts.Max(), length, layers, kvHeads, headDim, reference.dtype, reference.device);
    }

    /// <summary>Per-row start positions: one per batch row, each 0 or more, each row's positions start .. start + length within the context.</summary>
    public static void RowPositions(IReadOnlyList<long>? rowStarts, long batch, long length, int maxPositions, string parameter = "rowStarts")
    {
        if (rowStarts is null) throw new ModelInputException(parameter, $"{parameter} is null; expected one start position per batch row.");
        if (rowStarts.Count != batch) throw new ModelInputException(parameter, $"{parameter} has {rowStarts.Count} positions for a batch of {batch} rows; expected one per row.");
        for (int i = 0; i < rowStarts.Count; i++)
        {
            if (rowStarts[i] < 0) throw new ModelInputException(parameter, $"{parameter}[{i}] is {rowStarts[i]}; expected 0 or more.");
            if (rowStarts[i] + length > maxPositions)
                throw new ModelInputException(parameter, $"row {i}: positions {rowStarts[i]} .. {rowStarts[i] + length - 1} ({parameter}[{i}] {rowStarts[i]} + {length} tokens) exceed the model's context of {maxPositions} positions (config max_position_embeddings).");
        }
    }

    /// <summary>Per-row token counts of a right-padded batch (null: no padding): one per batch row, each from 1 to the batch's sequence length.</summary>
    public static void RowLengths(IReadOnlyList<long>? rowLengths, long batch, long length, string parameter = "rowLengths")
    {
        if (rowLengths is null) return;
        if (rowLengths.Count != batch) throw new ModelInputException(parameter, $"{parameter} has {rowLengths.Count} lengths for a batch of {batch} rows; expected one per row.");
        for (int i = 0; i < rowLengths.Count; i++)
            if (rowLengths[i] < 1 || rowLengths[i] > length)
                throw new ModelInputException(parameter, $"{parameter}[{i}] is {rowLengths[i]}; expected 1 to the batch's {length} tokens per row.");
    }

    /// <summary>An attention mask: [batch, keys] of 0 (padding) and 1 (token), bool, integer or floating, on the model's device.</summary>
    public static void AttentionMask(Tensor? mask, long batch, long keys, Device modelDevice, string parameter = "attentionMask")
    {
        if (mask is null) return;
        if (mask.dim() != 2 || mask.shape[0] != batch || mask.shape[1] != keys)
            throw new ModelInputException(parameter, $"{parameter} has shape [{string.Join(", ", mask.shape)}]; expected [{batch}, {keys}] (batch, past + current tokens).");
        if (mask.dtype is ScalarType.ComplexFloat32 or ScalarType.ComplexFloat64)
            throw new ModelInputException(parameter, $"{parameter} is {mask.dtype}; expected bool, integer or floating 0/1 values.");
        SameDevice(mask, modelDevice, parameter);
        bool other;
        using (Tensor bad = mask.ne(0).logical_and_(mask.ne(1)).any()) other = bad.item<bool>();
        if (other) throw new ModelInputException(parameter, $"{parameter} holds values other than 0 and 1 (1 = token, 0 = padding).");
    }

    /// <summary>Token type ids: [batch, seq] integers in [0, type_vocab_size) on the model's device.</summary>
    public static void TokenTypes(Tensor? types, long batch, long seq, int typeVocabSize, Device modelDevice, string parameter = "tokenTypeIds")
    {
        if (types is null) return;
        if (types.dtype is not (ScalarType.Int64 or ScalarType.Int32))
            throw new ModelInputException(parameter, $"{parameter} is {types.dtype}; expected int64 token type ids.");
        if (types.dim() != 2 || types.shape[0] != batch || types.shape[1] != seq)
            throw new ModelInputException(parameter, $"{parameter} has shape [{string.Join(", ", types.shape)}]; expected [{batch}, {seq}] like the token ids.");
        SameDevice(types, modelDevice, parameter);
        long min, max;
        using (Tensor lo = types.min()) min = lo.item<long>();
        using (Tensor hi = types.max()) max = hi.item<long>();
        if (min < 0 || max >= typeVocabSize)
            throw new ModelInputException(parameter, $"{parameter} holds {(min < 0 ? min : max)}, outside [0, {typeVocabSize}) (config type_vocab_size).");
    }

    /// <summary>A KV cache made for this model (layers, heads, head size, dtype, device) with room for positions start .. start + length.</summary>
    public static void Cache(KvCache? cache, long batch, long start, long length, int layers, long kvHeads, long headDim, ScalarType dtype, Device device, string parameter = "cache")
    {
        if (cache is null) return;
        if (cache.IsDisposed) throw new ModelInputException(parameter, $"{parameter} has been disposed.");
        if (cache.Layers != layers || cache.KvHeads != kvHeads || cache.HeadDim != headDim)
            throw new ModelInputException(parameter, $"{parameter} holds {cache.Layers} layers of {cache.KvHeads} heads x {cache.HeadDim}; this model needs {layers} layers of {kvHeads} heads x {headDim} (create it with the model's CreateCache).");
        if (cache.DType != dtype || cache.Device.type != device.type || cache.Device.index != device.index)
            throw new ModelInputException(parameter, $"{parameter} is {cache.DType} on {cache.Device}; the model runs {dtype} on {device}.");
        if (cache.Batch != batch)
            throw new ModelInputException(parameter, $"{parameter} was made for batch {cache.Batch}; the input has batch {batch}.");
        if (start + length > cache.Capacity)
            throw new ModelInputException(parameter, $"{parameter} holds {cache.Capacity} positions; writing {length} at position {start} would overflow it (create a larger cache).");
    }

    /// <summary>Generation settings and the prompt: ids in [0, vocab), sampling settings in range, prompt plus new tokens within the context.</summary>
    public static void Generation(IReadOnlyList<long>? prompt, GenerationOptions? options, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (prompt is null || prompt.Count == 0) throw new ModelInputException(nameof(prompt), "The prompt is empty.");
        for (int i = 0; i < prompt.Count; i++)
            if (prompt[i] < 0 || prompt[i] >= config.VocabSize)
                throw new ModelInputException(nameof(prompt), $"prompt[{i}] is {prompt[i]}, outside the vocabulary [0, {config.VocabSize}) of the model (config vocab_size).");
        Generation(prompt.Count, options, config.MaxPositions, "the model's context of {0} positions (config max_position_embeddings)");
    }

    /// <summary>
    /// The same checks for a backend that is fed int ids (llama.cpp, the Vulkan device): ids in [0, <paramref name="vocabSize"/>),
    /// sampling settings in range, prompt plus new tokens within <paramref name="contextSize"/>.
    /// </summary>
    public static void Generation(IReadOnlyList<int>? prompt, GenerationOptions? options, int vocabSize, int contextSize)
    {
        TokenIds(prompt, vocabSize, contextSize, nameof(prompt));
        Generation(prompt!.Count, options, contextSize, "the context of {0} positions");
    }

    /// <summary>The ids of one sequence fed to a backend: at least one, each in [0, <paramref name="vocabSize"/>), no more than <paramref name="contextSize"/>.</summary>
    public static void TokenIds(IReadOnlyList<int>? ids, int vocabSize, int contextSize, string parameter = "ids")
    {
        if (ids is null || ids.Count == 0) throw new ModelInputException(parameter, $"{parameter} is empty; expected at least one token id.");
        if (ids.Count > contextSize)
            throw new ModelInputException(parameter, $"{parameter} holds {ids.Count} tokens, more than the context of {contextSize} positions.");
        for (int i = 0; i < ids.Count; i++)
            if (ids[i] < 0 || ids[i] >= vocabSize)
                throw new ModelInputException(parameter, $"{parameter}[{i}] is {ids[i]}, outside the vocabulary [0, {vocabSize}) of the model.");
    }

    private static void Generation(int promptLength, GenerationOptions? options, int contextSize, string context)
    {
        if (options is null) throw new ModelInputException(nameof(options), "options is null.");
        if (options.MaxNewTokens < 1) throw new ModelInputException(nameof(options), $"max_new_tokens is {options.MaxNewTokens}; expected at least 1.");
        if ((long)promptLength + options.MaxNewTokens > contextSize)
            throw new ModelInputException(nameof(options),
                $"{promptLength} prompt tokens + max_new_tokens {options.MaxNewTokens} exceed {string.Format(System.Globalization.CultureInfo.InvariantCulture, context, contextSize)}; ask for at most {Math.Max(0, contextSize - promptLength)} new tokens.");
        if (options.DoSample && !(options.Temperature > 0 && double.IsFinite(options.Temperature)))
            throw new ModelInputException(nameof(options), $"temperature is {options.Temperature}; sampling needs a positive, finite temperature.");
        if (options.TopK < 0) throw new ModelInputException(nameof(options), $"top_k is {options.TopK}; expected 0 (off) or more.");
        if (!(options.TopP >= 0 && options.TopP <= 1)) throw new ModelInputException(nameof(options), $"top_p is {options.TopP}; expected a probability in [0, 1].");
        if (!(options.RepetitionPenalty > 0 && double.IsFinite(options.RepetitionPenalty)))
            throw new ModelInputException(nameof(options), $"repetition_penalty is {options.RepetitionPenalty}; expected a positive, finite number (1 = off).");
    }

    private static void Shape(Tensor t, string parameter, string expected)
    {
        if (t.dim() != 2 || t.shape[0] < 1 || t.shape[1] < 1)
            throw new ModelInputException(parameter, $"{parameter} has shape [{string.Join(", ", t.shape)}]; expected {expected} (batch and seq at least 1).");
    }

    private static void SameDevice(Tensor t, Device device, string parameter)
    {
        if (t.device_type != device.type || (device.type != DeviceType.CPU && t.device_index != device.index))
            throw new ModelInputException(parameter, $"{parameter} is on {t.device}; the model is on {device}.");
    }
}
