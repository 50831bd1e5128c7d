using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>
/// Deep copies of the module types <c>modules_to_save</c> is used on (heads and norms): TorchSharp
/// has no generic deepcopy, so each supported type is rebuilt with its shape and its tensors copied
/// (a model's own module types copy themselves: <see cref="ICopyableModule"/>).
/// </summary>
public static class ModuleCloner
{
    /// <summary>A trainable copy of <paramref name="module"/> with the same parameters, device and dtype.</summary>
    /// <exception cref="NotSupportedException">The module type cannot be copied; the message names it and the path.</exception>
    public static nn.Module<Tensor, Tensor> Clone(nn.Module<Tensor, Tensor> module, string path)
    {
        nn.Module<Tensor, Tensor> copy = module switch
        {
            Linear l => nn.Linear(l.weight!.shape[1], l.weight.shape[0], hasBias: l.bias is not null, device: l.weight.device, dtype: l.weight.dtype),
            Embedding e => nn.Embedding(e.weight!.shape[0], e.weight.shape[1], device: e.weight.device, dtype: e.weight.dtype),
            Conv1D c => new Conv1D(c.InFeatures, c.OutFeatures, c.weight.device, c.weight.dtype),
            LayerNorm n => nn.LayerNorm(n.weight!.shape, n.eps, elementwise_affine: true, bias: n.bias is not null, device: n.weight.device, dtype: n.weight.dtype),
            ICopyableModule c => c.Copy(),
            _ => throw new NotSupportedException($"modules_to_save: '{path}' is a {module.GetType().Name}, which cannot be copied (supported: Linear, Embedding, Conv1D, LayerNorm, and modules implementing ICopyableModule)."),
        };
        using (no_grad())
        {
            var source = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in copy.named_parameters())
            {
                p.copy_(source[name]);
                p.requires_grad = true;
            }
        }
        return copy;
    }
}
