using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>transformers' activation names (ACT2FN) as functions.</summary>
public static class Activations
{
    /// <summary>The activation for a config name: gelu (erf), gelu_new / gelu_pytorch_tanh (tanh approximation), relu, silu.</summary>
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "gelu" => x => nn.functional.gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" => x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => x => nn.functional.relu(x),
        "silu" => x => nn.functional.silu(x),
        _ => throw new NotSupportedException($"Activation '{name}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu)."),
    };
}
