using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.LnTuning;

/// <summary>
/// PEFT's <c>deepcopy(base_layer)</c> for the module types this plugin can copy: TorchSharp's LayerNorm and
/// Linear, the contract's Conv1D, and any module that copies itself (<see cref="ICopyableModule"/>, e.g. the
/// host's RMSNorm). TorchSharp has no generic deep copy.
/// </summary>
public static class ModuleCopy
{
    /// <summary>Whether <paramref name="module"/> can be copied.</summary>
    public static bool CanCopy(nn.Module module) => module is ICopyableModule or LayerNorm or Linear or Conv1D;

    /// <summary>A copy with its own parameters (same values, dtype and device), not registered anywhere.</summary>
    /// <exception cref="NotSupportedException">The module type cannot be copied.</exception>
    public static nn.Module<Tensor, Tensor> Of(nn.Module<Tensor, Tensor> module)
    {
        nn.Module<Tensor, Tensor> copy = module switch
        {
            ICopyableModule c => c.Copy(),
            LayerNorm n => nn.LayerNorm(n.normalized_shape, n.eps, n.elementwise_affine, bias: n.bias is not null, device: n.weight?.device, dtype: n.weight?.dtype),
            Linear l => nn.Linear(l.in_features, l.out_features, hasBias: l.bias is not null, device: l.weight.device, dtype: l.weight.dtype),
            Conv1D c => new Conv1D(c.InFeatures, c.OutFeatures, c.weight.device, c.weight.dtype),
            _ => throw new NotSupportedException($"LN tuning cannot copy a {module.GetType().Name} (it copies LayerNorm, Linear, Conv1D and modules implementing ICopyableModule)."),
        };
        using (no_grad())
        {
            var source = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in copy.named_parameters())
            {
                p.copy_(source[name]);
                p.requires_grad = false;
            }
        }
        return copy;
    }
}
