using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Additive attention masks as transformers builds them: 0 where attention is allowed, the dtype's
/// minimum (not -inf, so a fully masked row stays finite, as in eager attention) elsewhere.
/// </summary>
public static class AttentionMasks
{
    /// <summary>The most negative finite value of a floating dtype.</summary>
    public static double MinValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        ScalarType.Float64 => double.MinValue,
        _ => float.MinValue,
    };

    /// <summary>
    /// The mask [batch or 1, 1, q, kv] for queries at absolute positions start .. start + q and keys
    /// 0 .. kv: causal (key ≤ query), within <paramref name="slidingWindow"/> (query - key &lt; window),
    /// and not padding (<paramref name="paddingMask"/> [batch, kv], 1 = token, 0 = padding).
    /// </summary>
    public static Tensor Build(long queryLength, long keyLength, long start, bool causal, int? slidingWindow, Tensor? paddingMask, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        double min = MinValue(dtype);
        Tensor allowed = torch.ones([queryLength, keyLength], dtype: ScalarType.Bool, device: device);
        if (causal || slidingWindow is not null)
        {
            Tensor q = torch.arange(start, start + queryLength, dtype: ScalarType.Int64, device: device).unsqueeze(1);
            Tensor k = torch.arange(0, keyLength, dtype: ScalarType.Int64, device: device).unsqueeze(0);
            if (causal) allowed = allowed.logical_and(k <= q);
            if (slidingWindow is int w) allowed = allowed.logical_and(k > q - w);
        }
        Tensor full = allowed.unsqueeze(0).unsqueeze(0);
        if (paddingMask is not null)
        {
            if (paddingMask.shape[1] != keyLength)
                throw new ArgumentException($"The attention mask covers {paddingMask.shape[1]} positions but the keys are {keyLength} (past + current tokens).");
            full = full.logical_and(paddingMask.to(ScalarType.Bool, device).unsqueeze(1).unsqueeze(1));
        }
        Tensor mask = torch.zeros(full.shape, dtype: dtype, device: device).masked_fill_(full.logical_not(), min);
        return scope.MoveToOuter(mask);
    }

    /// <summary>
    /// The mask [batch, 1, seq, seq] of packed rows: a token sees the earlier tokens of its own document
    /// (<paramref name="sequenceIds"/> [batch, seq], 1, 2, ... per document, 0 = padding), within the window if any.
    /// </summary>
    public static Tensor Packed(Tensor sequenceIds, int? slidingWindow, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        long s = sequenceIds.shape[1];
        Tensor ids = sequenceIds.to(device);
        Tensor allowed = ids.unsqueeze(2).eq(ids.unsqueeze(1)).logical_and(ids.unsqueeze(1).ne(0));
        Tensor q = torch.arange(s, dtype: ScalarType.Int64, device: device).unsqueeze(1);
        Tensor k = torch.arange(s, dtype: ScalarType.Int64, device: device).unsqueeze(0);
        Tensor causal = k <= q;
        if (slidingWindow is int w) causal = causal.logical_and(k > q - w);
        allowed = allowed.logical_and(causal.unsqueeze(0));
        Tensor mask = torch.zeros(allowed.shape, dtype: dtype, device: device).masked_fill_(allowed.logical_not(), MinValue(dtype));
        return scope.MoveToOuter(mask.unsqueeze(1));
    }

    /// <summary>
    /// The mask [batch, 1, q, kv] for a batch whose rows are at different positions: row i's queries are
    /// at <paramref name="rowStarts"/>[i] .. + q ([batch] int64) and see the keys 0 .. their own position
    /// (causal), within <paramref name="slidingWindow"/>. Keys past a row's own position (other rows' longer
    /// histories) are masked, so each row attends to exactly its own sequence.
    /// </summary>
    public static Tensor BuildRows(long queryLength, long keyLength, Tensor rowStarts, int? slidingWindow, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        Tensor q = rowStarts.to(ScalarType.Int64, device).view(-1, 1, 1) + torch.arange(queryLength, dtype: ScalarType.Int64, device: device).view(1, -1, 1);
        Tensor k = torch.arange(keyLength, dtype: ScalarType.Int64, device: device).view(1, 1, -1);
        Tensor allowed = k <= q;
        if (slidingWindow is int w) allowed = allowed.logical_and(k > q - w);
        Tensor mask = torch.zeros(allowed.shape, dtype: dtype, device: device).masked_fill_(allowed.logical_not(), MinValue(dtype));
        return scope.MoveToOuter(mask.unsqueeze(1));
    }
}
