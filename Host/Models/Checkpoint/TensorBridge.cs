using PeftHost.Formats.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Checkpoint;

/// <summary>Between safetensors entries and TorchSharp tensors (bytes copied once, straight from the memory map).</summary>
public static class TensorBridge
{
    /// <summary>The TorchSharp dtype of a safetensors dtype.</summary>
    public static ScalarType ToTorch(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.F64 => ScalarType.Float64,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.U8 => ScalarType.Byte,
        SafetensorsDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The safetensors dtype of a TorchSharp dtype.</summary>
    public static SafetensorsDType FromTorch(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float64 => SafetensorsDType.F64,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Bool => SafetensorsDType.Bool,
        _ => throw new NotSupportedException($"dtype {dtype} has no safetensors equivalent."),
    };

    /// <summary>Parses a <c>--dtype</c> value: f32, f16, bf16 (also float32, float16, bfloat16).</summary>
    public static ScalarType ParseDType(string text) => text.Trim().ToLowerInvariant() switch
    {
        "f32" or "float32" or "fp32" => ScalarType.Float32,
        "f16" or "float16" or "fp16" or "half" => ScalarType.Float16,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"Unknown dtype '{text}': use f32, f16 or bf16."),
    };

    /// <summary>A tensor's data as a new CPU tensor of the file's dtype.</summary>
    public static Tensor Read(SafetensorsFile file, string name)
    {
        SafetensorsTensorInfo info = file.Info(name);
        Tensor t = torch.empty(info.Shape, dtype: ToTorch(info.DType));
        if (info.ByteLength > 0) file.GetBytes(name).CopyTo(t.bytes);
        return t;
    }

    /// <summary>A tensor's data as a new tensor converted to <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static Tensor Read(SafetensorsFile file, string name, ScalarType dtype, Device? device = null)
    {
        using Tensor raw = Read(file, name);
        return raw.to(dtype, device ?? CPU);
    }

    /// <summary>An entry that writes a (CPU copy of the) tensor's bytes.</summary>
    public static SafetensorsWriteTensor ToWrite(string name, Tensor tensor)
    {
        Tensor cpu;
        // Each call makes a new handle (to the same storage when nothing moves): the ones in between are freed now.
        using (Tensor detached = tensor.detach())
        using (Tensor onCpu = detached.cpu())
            cpu = onCpu.contiguous();
        return new SafetensorsWriteTensor(name, FromTorch(cpu.dtype), cpu.shape, s =>
        {
            using (cpu) s.Write(cpu.bytes);
        });
    }
}
