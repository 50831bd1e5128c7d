using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Export;

/// <summary>The weight types an export can write (llama.cpp's <c>--outtype</c> / <c>general.file_type</c>).</summary>
public static class GgufQuant
{
    /// <summary>Parses f32 | f16 | q8_0 | q4_0.</summary>
    public static GgmlType Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "f32" => GgmlType.F32,
        "f16" => GgmlType.F16,
        "q8_0" => GgmlType.Q8_0,
        "q4_0" => GgmlType.Q4_0,
        _ => throw new ArgumentException($"unknown quantization '{text}': use f32, f16, q8_0 or q4_0."),
    };

    /// <summary>llama.cpp's <c>llama_ftype</c> for a file whose large weights are <paramref name="type"/> (ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7).</summary>
    public static uint FileType(GgmlType type) => type switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q8_0 => 7,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "No llama.cpp file type for this weight type."),
    };

    /// <summary>
    /// The type a tensor is stored as (convert_hf_to_gguf's rule): 1-D tensors (norms, biases) stay
    /// F32; 2-D weights take <paramref name="requested"/> when each row is a whole number of blocks, else F32.
    /// </summary>
    public static GgmlType ForTensor(GgmlType requested, IReadOnlyList<long> shape)
    {
        if (shape.Count < 2) return GgmlType.F32;
        long rowLength = shape[^1];
        return rowLength % GgmlTypeTraits.BlockSize(requested) == 0 ? requested : GgmlType.F32;
    }
}
