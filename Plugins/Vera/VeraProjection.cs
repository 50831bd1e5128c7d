using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Vera;

/// <summary>
/// The frozen random pair one VeRA adapter shares between all the layers it adapts (PEFT's model-level
/// <c>vera_A</c> / <c>vera_B</c> buffers): <c>A</c> [r, max in], <c>B</c> [max out, r], sized by the largest
/// input and output over the adapter's targets; a layer uses the slices <c>A[:, :in]</c> and <c>B[:out, :]</c>.
/// </summary>
public sealed class VeraProjection : IDisposable
{
    private VeraProjection(Tensor a, Tensor b)
    {
        A = a;
        B = b;
    }

    /// <summary><c>vera_A</c> [r, max in].</summary>
    public Tensor A { get; }

    /// <summary><c>vera_B</c> [max out, r].</summary>
    public Tensor B { get; }

    /// <summary>
    /// PEFT's <c>_init_vera_A_vera_B</c>: from ONE CPU generator seeded with <paramref name="seed"/>, first
    /// <c>vera_A</c> then <c>vera_B</c>, each by <c>_kaiming_init</c> (uniform in ±√3 · √2 / √fan_in, fan_in
    /// the tensor's second dimension), in float32; then moved to <paramref name="device"/> and <paramref name="dtype"/>.
    /// TorchSharp's CPU generator (mt19937) and <c>uniform_</c> give torch 1.13's values bit for bit (checked
    /// against the projections PEFT saved).
    /// </summary>
    public static VeraProjection Generate(int r, long maxIn, long maxOut, long seed, Device device, ScalarType dtype)
    {
        using var generator = new Generator((ulong)seed, CPU);
        using Tensor a = KaimingUniform(r, maxIn, generator);
        using Tensor b = KaimingUniform(maxOut, r, generator);
        return new VeraProjection(a.to(dtype, device), b.to(dtype, device));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }

    // PEFT's _kaiming_init with gain √2 and fan_in = shape[1], in its order of operations.
    private static Tensor KaimingUniform(long rows, long columns, Generator generator)
    {
        double std = Math.Sqrt(2) / Math.Sqrt(columns);
        double bound = Math.Sqrt(3.0) * std;
        Tensor t = empty([rows, columns], ScalarType.Float32, CPU);
        using (no_grad()) t.uniform_(-bound, bound, generator);
        return t;
    }
}
