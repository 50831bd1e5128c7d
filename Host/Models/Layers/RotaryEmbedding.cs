using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Rotary position embedding tables (cos, sin: [positions, head_dim], float32) as transformers'
/// <c>LlamaRotaryEmbedding</c> computes them, including <c>linear</c> and <c>llama3</c> scaling.
/// Not a module: the tables are derived from the config and never saved.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _invFreq;
    private readonly Dictionary<(ScalarType, DeviceType, int), (Tensor Cos, Tensor Sin)> _tables = new();
    private long _length;

    /// <summary>Tables for <paramref name="headDim"/> and at least <paramref name="positions"/> positions (grown on demand).</summary>
    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling, long positions)
    {
        _invFreq = InverseFrequencies(headDim, theta, scaling);
        _length = Math.Max(positions, 1);
    }

    /// <summary>
    /// inv_freq as transformers computes it in float32: 1 / theta^(arange(0, d, 2) / d); linear
    /// scaling divides it by the factor; llama3 scales low frequencies by 1/factor, keeps high ones
    /// and interpolates between (<c>_compute_llama3_parameters</c>).
    /// </summary>
    public static Tensor InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        using var scope = NewDisposeScope();
        Tensor exponents = torch.arange(0, headDim, 2, dtype: ScalarType.Int64).to(ScalarType.Float32) / headDim;
        Tensor invFreq = 1.0 / torch.pow(torch.tensor(theta, dtype: ScalarType.Float32), exponents);
        switch (scaling?.Type)
        {
            case null: break;
            case "linear":
                invFreq = invFreq / scaling.Factor;
                break;
            case "llama3":
            {
                double lowWavelen = scaling.OriginalMaxPositions / scaling.LowFreqFactor;
                double highWavelen = scaling.OriginalMaxPositions / scaling.HighFreqFactor;
                Tensor wavelen = 2 * Math.PI / invFreq;
                Tensor scaled = torch.where(wavelen > lowWavelen, invFreq / scaling.Factor, invFreq);
                Tensor smooth = (scaling.OriginalMaxPositions / wavelen - scaling.LowFreqFactor) / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                Tensor smoothed = (1 - smooth) * scaled / scaling.Factor + smooth * scaled;
                Tensor medium = (wavelen < highWavelen).logical_not().logical_and((wavelen > lowWavelen).logical_not());
                invFreq = torch.where(medium, smoothed, scaled);
                break;
            }
            default: throw new NotSupportedException($"rope_scaling type '{scaling.Type}' is not supported (supported: linear, llama3).");
        }
        return scope.MoveToOuter(invFreq.contiguous());
    }

    /// <summary>The inverse frequencies (float32, [head_dim / 2]).</summary>
    public Tensor InvFreq => _invFreq;

    /// <summary>cos and sin for positions start .. start + count, [count, head_dim], in the dtype and device asked (views of cached tables).</summary>
    public (Tensor Cos, Tensor Sin) Slice(long start, long count, ScalarType dtype, Device device)
    {
        if (start + count > _length)
        {
            _length = Math.Max(start + count, 2 * _length);
            foreach ((Tensor c, Tensor s) in _tables.Values) { c.Dispose(); s.Dispose(); }
            _tables.Clear();
        }
        var key = (dtype, device.type, device.index);
        if (!_tables.TryGetValue(key, out var table))
        {
            using var scope = NewDisposeScope();
            Tensor positions = torch.arange(0, _length, dtype: ScalarType.Int64).to(ScalarType.Float32);
            Tensor freqs = torch.outer(positions, _invFreq);
            Tensor emb = torch.cat([freqs, freqs], -1);
            table = (emb.cos().to(dtype, device).DetachFromDisposeScope(), emb.sin().to(dtype, device).DetachFromDisposeScope());
            _tables[key] = table;
        }
        return (table.Cos.narrow(0, start, count), table.Sin.narrow(0, start, count));
    }

    /// <summary>
    /// cos and sin at each row's own positions: <paramref name="positions"/> [batch, seq] (int64) gives
    /// [batch, 1, seq, head_dim], which broadcasts over the heads (a batch whose sequences are at different positions).
    /// </summary>
    public (Tensor Cos, Tensor Sin) Gather(Tensor positions, long maxPosition, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        (Tensor cos, Tensor sin) = Slice(0, maxPosition + 1, dtype, device);
        long b = positions.shape[0], s = positions.shape[1];
        Tensor flat = positions.reshape(-1);
        Tensor c = cos.index_select(0, flat).view(b, 1, s, -1);
        Tensor n = sin.index_select(0, flat).view(b, 1, s, -1);
        return (scope.MoveToOuter(c), scope.MoveToOuter(n));
    }

    /// <summary>x·cos + rotate_half(x)·sin, rotate_half(x) = cat(-x2, x1), for x [batch, heads, seq, head_dim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        Tensor rotated = torch.cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1);
        if (!torch.is_grad_enabled()) return scope.MoveToOuter(rotated.mul_(sin).addcmul_(x, cos, 1));
        return scope.MoveToOuter(x * cos + rotated * sin);
    }

    /// <summary>Frees the tables.</summary>
    public void Dispose()
    {
        _invFreq.Dispose();
        foreach ((Tensor c, Tensor s) in _tables.Values) { c.Dispose(); s.Dispose(); }
        _tables.Clear();
    }
}
