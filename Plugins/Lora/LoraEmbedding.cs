using PeftHost.Abstractions.Layers;
using PeftHost.Plugins.Lora.Variants;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA on an embedding (PEFT's <c>lora.Embedding</c>): parameters
/// <c>lora_embedding_A.&lt;adapter&gt;</c> [r, num_embeddings] and
/// <c>lora_embedding_B.&lt;adapter&gt;</c> [embedding_dim, r];
/// y = base(x) + embedding(x, Aᵀ) · Bᵀ · scaling (no dropout on this path, as PEFT).
/// DoRA adapters run through <see cref="DoraEmbeddingVariant"/>.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's Embedding is a native module that does not expose its padding_idx or
/// max_norm, so the lookup of Aᵀ is a plain row gather: equal to PEFT's <c>F.embedding</c> in the
/// forward when max_norm is unset (padding_idx only changes gradients there).
/// </remarks>
public sealed class LoraEmbedding : LoraLayer
{
    private readonly AdapterParameterDict lora_embedding_A;
    private readonly AdapterParameterDict lora_embedding_B;

    /// <summary>Wraps an embedding (weight [num_embeddings, embedding_dim]).</summary>
    public LoraEmbedding(Embedding baseLayer) : base(nameof(LoraEmbedding), baseLayer)
    {
        NumEmbeddings = BaseWeight.Shape[0];
        EmbeddingDim = BaseWeight.Shape[1];
        lora_embedding_A = AdapterParameters("lora_embedding_A");
        lora_embedding_B = AdapterParameters("lora_embedding_B");
    }

    /// <summary>The vocabulary size.</summary>
    public long NumEmbeddings { get; }

    /// <summary>The embedding size.</summary>
    public long EmbeddingDim { get; }

    /// <inheritdoc />
    public override int NormDim => 0;

    /// <inheritdoc />
    protected override ILoraVariant? ResolveVariant(bool useDora) => useDora ? DoraEmbeddingVariant.Instance : null;

    /// <inheritdoc />
    protected override void CreateFactors(string adapter, int r, double scaling, string? init, string path)
    {
        // PEFT draws both from a standard normal, then any truthy init_lora_weights (true, "gaussian",
        // "pissa", "olora"...) resets A to zero and B to a standard normal; false keeps the draws.
        Tensor a = torch.randn([r, NumEmbeddings], dtype: BaseWeight.DType, device: BaseWeight.Device);
        Tensor b = torch.randn([EmbeddingDim, r], dtype: BaseWeight.DType, device: BaseWeight.Device);
        if (init is not null and not "false")
        {
            nn.init.zeros_(a);
            nn.init.normal_(b);
        }
        lora_embedding_A.Add(adapter, new Parameter(a, requires_grad: true));
        lora_embedding_B.Add(adapter, new Parameter(b, requires_grad: true));
    }

    /// <inheritdoc />
    public override (Parameter A, Parameter B) Factors(string adapter) => (lora_embedding_A[adapter], lora_embedding_B[adapter]);

    /// <inheritdoc />
    protected override void SetFactors(string adapter, Tensor a, Tensor b)
    {
        bool trainable = lora_embedding_A[adapter].requires_grad;
        lora_embedding_A.Remove(adapter);
        lora_embedding_B.Remove(adapter);
        lora_embedding_A.Add(adapter, new Parameter(a, trainable));
        lora_embedding_B.Add(adapter, new Parameter(b, trainable));
    }

    /// <inheritdoc />
    public override Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        Tensor product = Product(lora_embedding_B[adapter], lora_embedding_A[adapter]).mul_(Scaling(adapter));
        return scope.MoveToOuter(product.t().contiguous());
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        Tensor result = BaseLayer.forward(input);
        ScalarType resultType = result.dtype;
        foreach (string adapter in activeAdapters)
        {
            if (Variant(adapter) is { } variant)
            {
                result = variant.Forward(this, adapter, input, result);
                continue;
            }
            Tensor aT = lora_embedding_A[adapter].t();
            Tensor bT = lora_embedding_B[adapter].t();
            Tensor lora = Embed(input, aT).matmul(bT);
            result = result.add_(lora, alpha: Scaling(adapter));
        }
        return scope.MoveToOuter(result.to(resultType));
    }

    /// <summary>embedding(x, table): row x of the [num, r] table, for every index of x.</summary>
    internal static Tensor Embed(Tensor input, Tensor table) =>
        table.index_select(0, input.reshape(-1)).reshape([.. input.shape, table.shape[1]]);
}
