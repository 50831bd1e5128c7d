using static TorchSharp.torch;

namespace PeftHost.Abstractions.State;

/// <summary>
/// One adapted module's change of weight as a low-rank product: ΔW = <see cref="Scale"/> · B·A, with
/// A [r, in] and B [out, r] in the orientation of the module as a linear map from its input to its
/// output. For a Linear that is its weight's own [out, in] layout; for a GPT-2 Conv1D (weight stored
/// [in, out]) the change of the stored weight is ΔWᵀ; for an Embedding, <c>in</c> is the vocabulary and
/// <c>out</c> the embedding size, and the change of its weight [num_embeddings, dim] is ΔWᵀ.
/// Added in contract 1.1.
/// </summary>
public sealed class LowRankFactors : IDisposable
{
    /// <summary>Takes ownership of <paramref name="a"/> and <paramref name="b"/> (detached CPU copies, any floating dtype).</summary>
    /// <param name="modulePath">The adapted module's path in the model (e.g. <c>model.layers.0.self_attn.q_proj</c>).</param>
    /// <param name="a">A, [r, in].</param>
    /// <param name="b">B, [out, r].</param>
    /// <param name="scale">The factor of B·A: everything the method multiplies the product by for this module.</param>
    /// <exception cref="ArgumentException">The path is empty, a factor is not a matrix, the ranks disagree, or the scale is not finite.</exception>
    public LowRankFactors(string modulePath, Tensor a, Tensor b, double scale)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.dim() != 2 || b.dim() != 2 || a.shape[0] != b.shape[1])
            throw new ArgumentException($"Low-rank factors of '{modulePath}': A must be [r, in] and B [out, r] with the same r, got A [{string.Join(", ", a.shape)}] and B [{string.Join(", ", b.shape)}].");
        if (!double.IsFinite(scale)) throw new ArgumentException($"Low-rank factors of '{modulePath}': the scale must be finite, got {scale}.", nameof(scale));
        ModulePath = modulePath;
        A = a;
        B = b;
        Scale = scale;
    }

    /// <summary>The adapted module's path in the model.</summary>
    public string ModulePath { get; }

    /// <summary>A, [r, in].</summary>
    public Tensor A { get; }

    /// <summary>B, [out, r].</summary>
    public Tensor B { get; }

    /// <summary>The factor of B·A.</summary>
    public double Scale { get; }

    /// <summary>The rank r (rows of A, columns of B).</summary>
    public int Rank => (int)A.shape[0];

    /// <summary>The module's input size (columns of A).</summary>
    public long InFeatures => A.shape[1];

    /// <summary>The module's output size (rows of B).</summary>
    public long OutFeatures => B.shape[0];

    /// <summary>Disposes both factors.</summary>
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
