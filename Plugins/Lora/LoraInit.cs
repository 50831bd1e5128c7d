using PeftHost.Abstractions.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// PEFT's initialisations of the low-rank factors that need the base weight: PiSSA (SVD) and OLoRA
/// (QR). Every weight here is in [out, in] layout (a Conv1D's weight is transposed by the caller);
/// the computation runs in float32, as PEFT's, and the residual comes back in the weight's dtype.
/// </summary>
public static class LoraInit
{
    /// <summary>
    /// PiSSA: W = V S Uᵀ; A = diag(√(S_r/s)) Uᵀ_r, B = V_r diag(√(S_r/s)), residual W − s·B·A.
    /// With <paramref name="niter"/>, the SVD is the randomised low-rank one (PEFT's <c>pissa_niter_N</c>).
    /// </summary>
    /// <returns>A [r, in], B [out, r] (float32) and the residual weight (in <paramref name="weight"/>'s dtype).</returns>
    public static (Tensor A, Tensor B, Tensor Residual) Pissa(Tensor weight, int r, double scaling, int? niter, string path)
    {
        CheckRank(weight, r, niter is null ? "pissa" : $"pissa_niter_{niter}", path);
        using var scope = NewDisposeScope();
        Tensor w = weight.detach().to(ScalarType.Float32);
        Tensor vr, sr, uhr;
        if (niter is null)
        {
            var (v, s, uh) = torch.linalg.svd(w, fullMatrices: false);
            vr = v[.., ..r];
            sr = s[..r] / scaling;
            uhr = uh[..r];
        }
        else
        {
            var (u, s, v) = SvdLowRank(w, r, niter.Value);
            vr = u;
            sr = s / scaling;
            uhr = v.t();
        }
        Tensor root = torch.diag(sr.sqrt());
        Tensor a = root.matmul(uhr).contiguous();
        Tensor b = vr.matmul(root).contiguous();
        Tensor residual = (w - scaling * b.matmul(a)).to(weight.dtype);
        return (scope.MoveToOuter(a), scope.MoveToOuter(b), scope.MoveToOuter(residual));
    }

    /// <summary>OLoRA: W = Q R; A = R[:r], B = Q[:, :r], residual W − s·B·A.</summary>
    /// <returns>A [r, in], B [out, r] (float32) and the residual weight (in <paramref name="weight"/>'s dtype).</returns>
    public static (Tensor A, Tensor B, Tensor Residual) Olora(Tensor weight, int r, double scaling, string path)
    {
        CheckRank(weight, r, "olora", path);
        using var scope = NewDisposeScope();
        Tensor w = weight.detach().to(ScalarType.Float32);
        var (q, rr) = torch.linalg.qr(w);
        Tensor a = rr[..r].contiguous();
        Tensor b = q[.., ..r].contiguous();
        Tensor residual = (w - scaling * b.matmul(a)).to(weight.dtype);
        return (scope.MoveToOuter(a), scope.MoveToOuter(b), scope.MoveToOuter(residual));
    }

    /// <summary>
    /// A randomised rank-<paramref name="q"/> SVD (Halko et al.; the algorithm of torch's
    /// <c>svd_lowrank</c>): M ≈ U diag(S) Vᵀ with U [m, q], S [q], V [n, q].
    /// </summary>
    public static (Tensor U, Tensor S, Tensor V) SvdLowRank(Tensor m, int q, int niter)
    {
        using var scope = NewDisposeScope();
        // An orthonormal basis of M's range, refined by niter power iterations.
        Tensor basis = torch.linalg.qr(m.matmul(torch.randn(m.shape[1], q, dtype: m.dtype, device: m.device))).Q;
        for (int i = 0; i < niter; i++)
        {
            basis = torch.linalg.qr(m.t().matmul(basis)).Q;
            basis = torch.linalg.qr(m.matmul(basis)).Q;
        }
        Tensor small = basis.t().matmul(m);
        var (u, s, vh) = torch.linalg.svd(small, fullMatrices: false);
        return (scope.MoveToOuter(basis.matmul(u)), scope.MoveToOuter(s), scope.MoveToOuter(vh.t().contiguous()));
    }

    private static void CheckRank(Tensor weight, int r, string method, string path)
    {
        long max = Math.Min(weight.shape[0], weight.shape[1]);
        if (r > max)
            throw new TunerConfigException($"adapter config field 'r': init_lora_weights \"{method}\" on '{path}' needs r <= min(in, out) = {max}, got {r}.");
        if (weight.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16))
            throw new TunerConfigException($"adapter config field 'init_lora_weights': \"{method}\" needs a float32, float16 or bfloat16 base weight; '{path}' is {weight.dtype}.");
    }
}
