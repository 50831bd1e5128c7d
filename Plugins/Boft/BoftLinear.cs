using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Boft;

/// <summary>
/// BOFT on a linear layer (PEFT 0.13.2's <c>boft.Linear</c>): per adapter the parameter dict entries
/// <c>boft_R</c> [m+1, D, b, b] (m + 1 butterfly factors of D blocks of size b, D·b = in) and <c>boft_s</c>
/// [out, 1]. Each factor i is the block-diagonal matrix of the blocks' Cayley transforms
/// Q = (I − S)(I + S)⁻¹, S = (A − Aᵀ) / 2, conjugated by the butterfly permutation Pᵢ; the rotation is
/// R = M_m ⋯ M_0 with Mᵢ = Pᵢ Bᵢ Pᵢᵀ. The layer computes W' = (R Wᵀ)ᵀ ⊙ s and y = x W'ᵀ + b, the active
/// adapters' rotations multiplied in turn (R = R_a R, s = s_a ⊙ s); merging writes W' into the base weight.
/// </summary>
/// <remarks>
/// The permutations are applied by indexing (exactly what PEFT's <c>boft_P</c> matrices do), kept per
/// adapter; PEFT keeps one buffer per layer, the last adapter's, which differs only for two butterfly
/// adapters of different block layouts on one layer. In training, <c>boft_dropout</c> replaces that fraction
/// of the blocks of one random factor by the identity (PEFT's <c>MultiplicativeDropoutLayer</c>).
/// </remarks>
public sealed class BoftLinear : TunerLayer
{
    private readonly AdapterParameterDict boft_R;
    private readonly AdapterParameterDict boft_s;
    private readonly AdapterValueDict<double> boft_dropout;
    private readonly AdapterValueDict<long[][]> permutations;

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public BoftLinear(Linear baseLayer) : base(nameof(BoftLinear), baseLayer)
    {
        OutFeatures = baseLayer.weight!.shape[0];
        InFeatures = baseLayer.weight.shape[1];
        boft_R = AdapterParameters("boft_R");
        boft_s = AdapterParameters("boft_s");
        boft_dropout = AdapterValues<double>("boft_dropout");
        permutations = AdapterValues<long[][]>("boft_P");
    }

    /// <summary>The base layer's input size (the rotated side).</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size (the scaled side).</summary>
    public long OutFeatures { get; }

    /// <summary>The layer's bias (PEFT's <c>bias</c> option trains it), or null.</summary>
    public Parameter? Bias => ((Linear)BaseLayer).bias;

    /// <summary>
    /// PEFT's <c>update_layer</c> checks: the block size b and number D of a layer with <paramref name="inFeatures"/>
    /// inputs, from whichever of <paramref name="blockSize"/> / <paramref name="blockNum"/> is given, for
    /// <paramref name="factors"/> butterfly factors (PEFT's messages, naming the module).
    /// </summary>
    /// <exception cref="TunerConfigException">The sizes do not fit the layer.</exception>
    public static (int BlockSize, int BlockNum) Blocks(string path, long inFeatures, int blockSize, int blockNum, int factors)
    {
        int m = factors - 1;
        string where = $"target module '{path}'";
        if (blockSize == 0)
        {
            if (inFeatures % blockNum != 0)
                throw new TunerConfigException($"{where}: in_features ({inFeatures}) must be divisible by boft_block_num ({blockNum})!");
            if (m != 0)
            {
                if (m > (int)Math.Log2(blockNum))
                    throw new TunerConfigException($"{where}: Invalid combination of boft_n_butterfly_factor ({factors}) and boft_block_num ({blockNum})!");
                if (blockNum % (1 << m) != 0)
                    throw new TunerConfigException($"{where}: boft_block_num ({blockNum}) must be a multiple of 2 raised to the power of boft_n_butterfly_factor ({factors})!");
            }
            blockSize = (int)(inFeatures / blockNum);
        }
        else
        {
            if (inFeatures % blockSize != 0)
                throw new TunerConfigException($"{where}: in_features ({inFeatures}) must be divisible by boft_block_size ({blockSize})!");
            if (m != 0 && (m > 30 || inFeatures < (long)blockSize << m || inFeatures % ((long)blockSize << m) != 0))
                throw new TunerConfigException($"{where}: Invalid combination of in_features ({inFeatures}), boft_n_butterfly_factor ({factors}) and boft_block_size ({blockSize})!");
            blockNum = (int)(inFeatures / blockSize);
        }
        if (m != 0)
        {
            if (blockNum % 2 != 0) throw new TunerConfigException($"{where}: boft_block_num ({blockNum}) must be an even number!");
            if (blockSize % 2 != 0) throw new TunerConfigException($"{where}: boft_block_size ({blockSize}) must be an even number!");
        }
        return (blockSize, blockNum);
    }

    /// <summary>
    /// PEFT's <c>block_butterfly_perm(n, blocks, group, m)</c>: the identity for m = 0; otherwise, within each span of
    /// n / <paramref name="blocks"/> indices, the groups of <paramref name="group"/> consecutive indices reordered
    /// evens first, then odds. Entry k says which input index lands at position k (PEFT's <c>perm2mat</c>: P[k, p[k]] = 1).
    /// </summary>
    public static long[] ButterflyPermutation(long n, long blocks, long group, int m)
    {
        long[] indices = new long[n];
        for (long i = 0; i < n; i++) indices[i] = i;
        if (m == 0) return indices;
        if (blocks * group * 2 > n) throw new TunerConfigException($"Invalid number of blocks! (block_butterfly_perm({n}, {blocks}, {group}))");
        long span = n / blocks;
        long groups = span / group;
        long[] order = [.. Enumerable.Range(0, (int)groups).Where(g => g % 2 == 0).Concat(Enumerable.Range(0, (int)groups).Where(g => g % 2 == 1))
            .SelectMany(g => Enumerable.Range(0, (int)group).Select(j => (long)g * group + j))];
        for (long start = 0; start < n; start += span)
            for (long k = 0; k < span; k++) indices[start + k] = start + order[k];
        return indices;
    }

    /// <summary>
    /// Adds an adapter (PEFT's <c>update_layer</c>): <c>boft_R</c> [factors, D, b, b] and <c>boft_s</c> [out, 1]; zeros and
    /// ones when <paramref name="initWeights"/> (R = I, a no-op), else N(0, 0.1) and N(1, 0.1).
    /// </summary>
    public void AddAdapter(string adapter, int blockSize, int blockNum, int factors, double dropout, bool initWeights)
    {
        Tensor weight = ((Linear)BaseLayer).weight!;
        using Tensor r = zeros([factors, blockNum, blockSize, blockSize], dtype: weight.dtype, device: weight.device);
        using Tensor s = ones([OutFeatures, 1], dtype: weight.dtype, device: weight.device);
        if (!initWeights)
        {
            using (no_grad())
            {
                nn.init.normal_(r, mean: 0.0, std: 0.1);
                nn.init.normal_(s, mean: 1.0, std: 0.1);
            }
        }
        long[][] perms = [.. Enumerable.Range(0, factors).Select(i => ButterflyPermutation(InFeatures, blockNum >> i, blockSize / 2, factors - 1))];
        boft_R.Add(adapter, new Parameter(r));
        boft_s.Add(adapter, new Parameter(s));
        boft_dropout[adapter] = dropout;
        permutations[adapter] = perms;
    }

    /// <summary>The butterfly rotation R [in, in] of one adapter (with block dropout when <paramref name="dropBlocks"/>, training).</summary>
    public Tensor Rotation(string adapter, bool dropBlocks = false)
    {
        using var scope = NewDisposeScope();
        Parameter parameter = boft_R[adapter];
        long factors = parameter.shape[0], blocks = parameter.shape[1], size = parameter.shape[2];
        Tensor q = Cayley(parameter.view(factors * blocks, size, size)).view(factors, blocks, size, size);
        if (dropBlocks && boft_dropout[adapter] > 0) q = DropBlocks(q, boft_dropout[adapter]);
        Tensor? rotation = null;
        long[][] perms = permutations[adapter];
        for (int i = 0; i < factors; i++)
        {
            Tensor diagonal = block_diag([.. Enumerable.Range(0, (int)blocks).Select(j => q[i, j])]);
            using Tensor perm = tensor(perms[i], device: diagonal.device);
            // P B Pᵀ: rows and columns taken in the permutation's order.
            Tensor factor = diagonal.index_select(0, perm).index_select(1, perm);
            rotation = rotation is null ? factor : factor.matmul(rotation);
        }
        return scope.MoveToOuter(rotation!);
    }

    // PEFT's cayley_batch: Q solves Q (I + S) = I - S, S the skew-symmetric part of each block.
    private static Tensor Cayley(Tensor data)
    {
        using var scope = NewDisposeScope();
        Tensor skew = data.sub(data.transpose(1, 2)).mul(0.5);
        Tensor eye = torch.eye(data.shape[1], dtype: data.dtype, device: data.device).unsqueeze(0).expand_as(data);
        return scope.MoveToOuter(linalg.solve(eye.add(skew), eye.sub(skew), left: false));
    }

    // PEFT's MultiplicativeDropoutLayer: in one random factor, int(p * D) random blocks become the identity.
    private static Tensor DropBlocks(Tensor q, double p)
    {
        using var scope = NewDisposeScope();
        long factors = q.shape[0], blocks = q.shape[1], size = q.shape[2];
        long chosen = randint(0, factors, [1]).item<long>();
        long replaced = (long)(p * blocks);
        Tensor mask = cat([ones(replaced, device: q.device), zeros(blocks - replaced, device: q.device)]).index_select(0, randperm(blocks, device: q.device));
        Tensor full = zeros([factors, blocks, 1, 1], dtype: q.dtype, device: q.device);
        full[chosen].copy_(mask.view(blocks, 1, 1));
        Tensor eye = torch.eye(size, dtype: q.dtype, device: q.device).repeat(factors, blocks, 1, 1);
        return scope.MoveToOuter(full.neg().add(1).mul(q).add(full.mul(eye)));
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        using var scope = NewDisposeScope();
        var linear = (Linear)BaseLayer;
        Tensor? rotation = null, scale = null;
        foreach (string adapter in activeAdapters)
        {
            Tensor r = Rotation(adapter, dropBlocks: training);
            rotation = rotation is null ? r : r.matmul(rotation);
            scale = scale is null ? boft_s[adapter] : boft_s[adapter].mul(scale);
        }
        Tensor weight = linear.weight!.to(input.dtype);
        Tensor rotated = rotation!.to(input.dtype).mm(weight.t()).t().mul(scale!.to(input.dtype));
        Tensor result = nn.functional.linear(input, rotated, linear.bias?.to(input.dtype));
        return scope.MoveToOuter(result);
    }

    /// <summary>PEFT's <c>Linear.merge</c>: W := (R Wᵀ)ᵀ ⊙ s.</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        Parameter weight = ((Linear)BaseLayer).weight!;
        using var scope = NewDisposeScope();
        Tensor merged = Rotation(adapter).to(weight.dtype).mm(weight.t()).t().mul(boft_s[adapter].to(weight.dtype));
        if (safeMerge) EnsureFinite(merged, adapter);
        weight.copy_(merged);
    }

    /// <summary>PEFT's <c>Linear.unmerge</c>: W := (Rᵀ W'ᵀ)ᵀ ⊙ (1 / s).</summary>
    protected override void UnmergeFrom(string adapter)
    {
        Parameter weight = ((Linear)BaseLayer).weight!;
        using var scope = NewDisposeScope();
        Tensor rotation = Rotation(adapter).to(weight.dtype);
        weight.copy_(rotation.t().mm(weight.t()).t().mul(boft_s[adapter].to(weight.dtype).reciprocal()));
    }

    /// <summary>
    /// Refused around another method's layer (contract 1.2): BOFT computes its output as <c>F.linear</c> of the input with
    /// the rotated original weight, not from the inner layer's output.
    /// </summary>
    public override string? CannotWrapReason(TunerLayer inner) =>
        "BOFT recomputes the module's output from the rotated original weight (F.linear) instead of running the layer it wraps, so the inner layer's output would be silently dropped; add the BOFT adapter first";
}
