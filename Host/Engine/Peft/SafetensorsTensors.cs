using PeftHost.Formats.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>Moves tensors between TorchSharp and safetensors files (the Formats room has no TorchSharp).</summary>
public static class SafetensorsTensors
{
    /// <summary>The TorchSharp dtype of a safetensors dtype.</summary>
    public static ScalarType ToScalarType(SafetensorsDType dtype, string file, string tensor) => dtype switch
    {
        SafetensorsDType.F32 => ScalarType.Float32,
        SafetensorsDType.F16 => ScalarType.Float16,
        SafetensorsDType.BF16 => ScalarType.BFloat16,
        SafetensorsDType.F64 => ScalarType.Float64,
        SafetensorsDType.I64 => ScalarType.Int64,
        SafetensorsDType.I32 => ScalarType.Int32,
        SafetensorsDType.I8 => ScalarType.Int8,
        SafetensorsDType.U8 => ScalarType.Byte,
        SafetensorsDType.I16 => ScalarType.Int16,
        SafetensorsDType.Bool => ScalarType.Bool,
        _ => throw new InvalidDataException($"{file}: tensor '{tensor}' has dtype {dtype.Name()}, which has no TorchSharp equivalent here."),
    };

    /// <summary>The safetensors dtype of a TorchSharp tensor.</summary>
    public static SafetensorsDType ToSafetensorsDType(ScalarType type, string tensor) => type switch
    {
        ScalarType.Float32 => SafetensorsDType.F32,
        ScalarType.Float16 => SafetensorsDType.F16,
        ScalarType.BFloat16 => SafetensorsDType.BF16,
        ScalarType.Float64 => SafetensorsDType.F64,
        ScalarType.Int64 => SafetensorsDType.I64,
        ScalarType.Int32 => SafetensorsDType.I32,
        ScalarType.Int8 => SafetensorsDType.I8,
        ScalarType.Byte => SafetensorsDType.U8,
        ScalarType.Int16 => SafetensorsDType.I16,
        ScalarType.Bool => SafetensorsDType.Bool,
        _ => throw new ArgumentException($"Tensor '{tensor}' has dtype {type}, which safetensors cannot store."),
    };

    /// <summary>A CPU tensor holding a copy of one tensor of the file.</summary>
    public static Tensor Read(SafetensorsFile file, string name)
    {
        SafetensorsTensorInfo info = file.Info(name);
        Tensor t = torch.empty(info.Shape, ToScalarType(info.DType, file.Path, name));
        if (info.ByteLength > 0) file.CopyTo(name, t.bytes); // Span over the new tensor's storage (adapter-sized tensors)
        return t;
    }

    /// <summary>Every tensor of a file, as CPU copies.</summary>
    public static Dictionary<string, Tensor> ReadAll(SafetensorsFile file)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (SafetensorsTensorInfo info in file.Tensors) result[info.Name] = Read(file, info.Name);
        return result;
    }

    /// <summary>A tensor to write (made contiguous on the CPU; the copy is taken now).</summary>
    public static SafetensorsWriteTensor ToWrite(string name, Tensor tensor)
    {
        using Tensor cpu = tensor.detach().to(CPU).contiguous();
        byte[] data = cpu.bytes.ToArray();
        return SafetensorsWriteTensor.FromBytes(name, ToSafetensorsDType(cpu.dtype, name), cpu.shape, data);
    }
}
