using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.BitFit;

/// <summary>
/// BitFit on a module with a bias parameter (Linear, GPT-2 Conv1D, LayerNorm): per adapter the full trained bias
/// <c>bitfit_bias.&lt;adapter&gt;</c> (saved under the module's own <c>bias</c> key), used instead of the base bias,
/// which stays unchanged aside: Linear y = x Wᵀ + b_a, Conv1D y = x W + b_a, LayerNorm y = norm(x) · weight + b_a.
/// One adapter at a time per module (two would leave the bias undefined).
/// </summary>
/// <remarks>Merging copies b_a into the base bias, keeping the base value aside, so unmerge restores it bit for bit.</remarks>
public sealed class BitFitLayer : TunerLayer
{
    private readonly AdapterParameterDict bitfit_bias;
    private readonly string _path;
    private Tensor? _baseBias;

    /// <summary>Wraps the module at <paramref name="path"/>, which must have a bias parameter (<see cref="HasBias"/>).</summary>
    public BitFitLayer(nn.Module<Tensor, Tensor> baseLayer, string path) : base(nameof(BitFitLayer), baseLayer)
    {
        if (!HasBias(baseLayer)) throw new ArgumentException($"'{path}' is a {baseLayer.GetType().Name} without a bias parameter.", nameof(baseLayer));
        _path = path;
        bitfit_bias = AdapterParameters("bitfit_bias");
    }

    /// <summary>Whether a module has a bias term BitFit can train: the bias parameter of a Linear, Conv1D or LayerNorm.</summary>
    public static bool HasBias(nn.Module module) => BiasOf(module) is not null;

    /// <summary>The adapter's bias starts as a copy of the base bias (a no-op).</summary>
    public void AddAdapter(string adapter)
    {
        using (no_grad())
        using (Tensor copy = Bias.detach().clone())
            bitfit_bias.Add(adapter, new Parameter(copy));
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        if (activeAdapters.Count != 1)
            throw new NotSupportedException($"BitFit adapters {string.Join(", ", activeAdapters)} are all active on '{_path}': one module's bias can come from one BitFit adapter only; activate one of them.");
        using var scope = NewDisposeScope();
        Tensor bias = bitfit_bias[activeAdapters[0]];
        Tensor output = BaseLayer switch
        {
            Linear l => nn.functional.linear(input, l.weight!, bias.to(l.weight!.dtype)),
            Conv1D c => ConvForward(c, input, bias.to(c.weight.dtype)),
            LayerNorm n => nn.functional.layer_norm(input, n.normalized_shape, n.weight, bias.to(n.weight.dtype), n.eps),
            _ => throw new InvalidOperationException($"BitFit cannot run a {BaseLayer.GetType().Name}."),
        };
        return scope.MoveToOuter(output);
    }

    /// <summary>The base bias := the adapter's (a copy; the base value kept aside for unmerge).</summary>
    protected override void MergeInto(string adapter, bool safeMerge)
    {
        if (MergedAdapters.Count > 0)
            throw new NotSupportedException($"BitFit adapter '{MergedAdapters[0]}' is merged into '{_path}' already: one module's bias can hold one BitFit adapter; unmerge it before merging '{adapter}'.");
        Tensor value = bitfit_bias[adapter];
        if (safeMerge) EnsureFinite(value, adapter);
        Parameter bias = Bias;
        _baseBias = bias.detach().clone();
        bias.copy_(value);
    }

    /// <summary>The kept base bias back, exactly.</summary>
    protected override void UnmergeFrom(string adapter)
    {
        if (_baseBias is null) return;
        Bias.copy_(_baseBias);
        _baseBias.Dispose();
        _baseBias = null;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _baseBias?.Dispose();
            _baseBias = null;
        }
        base.Dispose(disposing);
    }

    // Read from the base layer each time: moving the model to another dtype or device replaces its parameters.
    private Parameter Bias => BiasOf(BaseLayer)!;

    private static Parameter? BiasOf(nn.Module module) => module switch
    {
        Linear l => l.bias,
        Conv1D c => c.bias,
        LayerNorm n => n.bias,
        _ => null,
    };

    // transformers' Conv1D with another bias: addmm(b, x, W), as Conv1D.forward.
    private static Tensor ConvForward(Conv1D conv, Tensor input, Tensor bias) =>
        torch.addmm(bias, input.reshape(-1, conv.InFeatures), conv.weight, beta: 1, alpha: 1).reshape([.. input.shape[..^1], conv.OutFeatures]);

    /// <summary>Methods combined on one module (contract 1.2): BitFit replaces the module's bias, which a method that transforms the output around the bias (OFT) must not see changed.</summary>
    public override bool ChangesBias => true;

    /// <summary>Refused around another method's layer: BitFit computes the output itself from the original weight and its own bias.</summary>
    public override string? CannotWrapReason(TunerLayer inner) =>
        "BitFit computes the module's output itself from the original weight and its trained bias, so the inner layer's output would be dropped; add the BitFit adapter first";
}
