using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// A module that can copy itself (contract 1.1): Python's <c>copy.deepcopy</c> of a torch module, which
/// TorchSharp has no generic form of. Tuners that train a copy of a module in its place (PEFT's LN tuning,
/// <c>modules_to_save</c>) copy TorchSharp's own layers themselves and a model's own module types through
/// this, e.g. the RMSNorm of the host's Llama.
/// </summary>
public interface ICopyableModule
{
    /// <summary>
    /// A new module of the same type and configuration with its own parameters and buffers, equal in
    /// values, dtype and device, and not registered anywhere. Gradient flags are not copied: every
    /// parameter of the copy has <c>requires_grad</c> false; the caller decides what trains.
    /// </summary>
    nn.Module<Tensor, Tensor> Copy();
}
