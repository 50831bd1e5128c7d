using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>Rows of different lengths in one batch, right-padded to the longest (a batched prefill of several prompts).</summary>
public static class PaddedRows
{
    /// <summary>
    /// The hidden state [batch, 1, hidden] of every row's last real token: position rowLengths[i] - 1 of row i, or the
    /// last position of every row when <paramref name="rowLengths"/> is null (no padding).
    /// </summary>
    public static Tensor LastTokens(Tensor hidden, IReadOnlyList<long>? rowLengths)
    {
        long seq = hidden.shape[1];
        if (rowLengths is null || rowLengths.All(l => l == seq)) return hidden.narrow(1, seq - 1, 1);
        using Tensor last = tensor(rowLengths.Select(l => l - 1).ToArray(), dtype: ScalarType.Int64, device: hidden.device);
        using Tensor index = last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2]);
        return hidden.gather(1, index);
    }
}
