using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Llama;

/// <summary>A weight matrix [rows, cols] in a GGML type on the device, with the kernels that multiply by it.</summary>
internal sealed class DeviceMatrix : IDisposable
{
    private readonly MatVecKernel _matVec;
    private readonly MatVecKernel _matVecAdd;
    private readonly MatMulKernel _matMul;
    private readonly MatMulKernel _matMulAdd;

    public DeviceMatrix(VulkanContext context, VulkanBuffer buffer, GgmlType type, int rows, int cols)
    {
        Buffer = buffer;
        Type = type;
        Rows = rows;
        Cols = cols;
        _matVec = new MatVecKernel(context, type);
        _matVecAdd = new MatVecKernel(context, type, accumulate: true);
        _matMul = new MatMulKernel(context, type);
        _matMulAdd = new MatMulKernel(context, type, accumulate: true);
    }

    public VulkanBuffer Buffer { get; }
    public GgmlType Type { get; }
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>An unmerged LoRA term added after the product (owned; replaced by <see cref="SetLowRank"/>).</summary>
    public DeviceLowRank? LowRank { get; private set; }

    /// <summary>Replaces the low-rank term (null: none), disposing the old one.</summary>
    public void SetLowRank(DeviceLowRank? lowRank)
    {
        LowRank?.Dispose();
        LowRank = lowRank;
    }

    /// <summary>Y[tokens, rows] (+)= X[tokens, cols] Wᵀ (+ B A X with a low-rank term): the matrix-vector kernel for one token, the tiled product for more.</summary>
    public void Record(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer y, int tokens, bool accumulate)
    {
        RecordBase(recorder, x, y, tokens, accumulate);
        LowRank?.Record(recorder, x, y, tokens);
    }

    private void RecordBase(VulkanCommandRecorder recorder, VulkanBuffer x, VulkanBuffer y, int tokens, bool accumulate)
    {
        if (tokens == 1)
        {
            (accumulate ? _matVecAdd : _matVec).Record(recorder, Buffer, x, y, Rows, Cols);
        }
        else
        {
            (accumulate ? _matMulAdd : _matMul).Record(recorder, Buffer, x, y, Rows, Cols, tokens);
        }
    }

    /// <summary>Uploads the row-wise concatenation of GGUF tensors of one type and row length.</summary>
    public static DeviceMatrix Load(VulkanContext context, GgufFile file, params string[] names)
    {
        GgufTensorInfo first = file.GetTensor(names[0]);
        int rows = 0;
        var parts = new List<byte[]>();
        foreach (string name in names)
        {
            GgufTensorInfo t = file.GetTensor(name);
            if (t.Dimensions.Count != 2)
            {
                throw new GgufFormatException(file.FileName, name, $"expected a matrix, found {t.Dimensions.Count} dimensions.");
            }
            if (t.Type != first.Type || t.Columns != first.Columns)
            {
                throw new GgufFormatException(file.FileName, name, $"fused with {first.Name}, it must have the same type and row length ({GgmlTypeTraits.Name(first.Type)}, {first.Columns}).");
            }
            if (t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.Q8_0 or GgmlType.Q4_0))
            {
                throw new NotSupportedException($"{file.FileName}: tensor {name} has type {t.Type}; the Vulkan kernels read f32, f16, q8_0 and q4_0.");
            }
            parts.Add(file.ReadTensorBytes(t));
            rows += (int)t.Rows;
        }
        byte[] data = parts.Count == 1 ? parts[0] : [.. parts.SelectMany(p => p)];
        VulkanBuffer buffer = context.Upload<byte>(data, string.Join("|", names));
        return new DeviceMatrix(context, buffer, first.Type, rows, (int)first.Columns);
    }

    public void Dispose()
    {
        LowRank?.Dispose();
        Buffer.Dispose();
    }
}
