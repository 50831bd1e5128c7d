using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>torch's dtype names as bitsandbytes and transformers write them ("float32", "bfloat16", "float16").</summary>
public static class QuantDTypes
{
    /// <summary>The TorchSharp dtype of a name.</summary>
    /// <exception cref="ArgumentException">Not float32, bfloat16 or float16.</exception>
    public static ScalarType Parse(string name) => name switch
    {
        "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => throw new ArgumentException($"dtype '{name}' is not float32, bfloat16 or float16."),
    };

    /// <summary>The name of a float dtype.</summary>
    /// <exception cref="ArgumentException">Not float32, bfloat16 or float16.</exception>
    public static string Name(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => throw new ArgumentException($"dtype {dtype} is not float32, bfloat16 or float16."),
    };

    /// <summary>A float32 CPU copy of a tensor's values, row-major.</summary>
    internal static float[] ToSingles(Tensor t)
    {
        using Tensor cpu = t.detach().to(ScalarType.Float32, CPU).contiguous();
        return cpu.data<float>().ToArray();
    }
}
