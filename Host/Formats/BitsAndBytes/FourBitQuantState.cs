using System.Text;
using System.Text.Json;

namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// The non-tensor part of a 4-bit weight's bitsandbytes <c>QuantState</c>, which
/// <c>QuantState.as_dict(packed=True)</c> stores as the UTF-8 bytes of <c>json.dumps</c> in the uint8 tensor
/// <c>&lt;weight&gt;.quant_state.bitsandbytes__nf4</c> (or <c>__fp4</c>), e.g.
/// <c>{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4096, 4096], "nested_blocksize": 256,
/// "nested_dtype": "float32", "nested_offset": 0.0213}</c>.
/// </summary>
public sealed class FourBitQuantState
{
    /// <summary>Float dtypes bitsandbytes dequantizes to (<c>dtype</c>, torch's name without "torch.").</summary>
    public static IReadOnlyList<string> DTypes { get; } = ["float32", "float16", "bfloat16"];

    private static readonly string[] Keys = ["quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"];

    /// <summary><c>quant_type</c>.</summary>
    public required FourBitType QuantType { get; init; }

    /// <summary><c>blocksize</c>: values per absmax.</summary>
    public required int BlockSize { get; init; }

    /// <summary><c>dtype</c>: the weight's dtype when it was quantized, the dtype bitsandbytes dequantizes to.</summary>
    public required string DType { get; init; }

    /// <summary><c>shape</c>: the weight's shape, [out_features, in_features] for a linear layer.</summary>
    public required IReadOnlyList<long> Shape { get; init; }

    /// <summary><c>nested_blocksize</c>, with double quantization.</summary>
    public int? NestedBlockSize { get; init; }

    /// <summary><c>nested_dtype</c> (the absmax dtype, "float32"), with double quantization.</summary>
    public string? NestedDType { get; init; }

    /// <summary><c>nested_offset</c>, with double quantization (a float32 value written as a Python float).</summary>
    public double? NestedOffset { get; init; }

    /// <summary>Whether the absmax values are double-quantized.</summary>
    public bool Nested => NestedBlockSize is not null;

    /// <summary>The tensor name's suffix after the weight's name: <c>quant_state.bitsandbytes__nf4</c> or <c>__fp4</c>.</summary>
    public static string KeySuffix(FourBitType type) => "quant_state.bitsandbytes__" + type.Name();

    /// <summary>The values the shape holds.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>The bytes bitsandbytes writes: <c>json.dumps</c> of the fields in as_dict's order.</summary>
    public byte[] ToJsonBytes()
    {
        var sb = new StringBuilder();
        sb.Append("{\"quant_type\": \"").Append(QuantType.Name()).Append("\", \"blocksize\": ").Append(BlockSize)
          .Append(", \"dtype\": \"").Append(DType).Append("\", \"shape\": [").Append(string.Join(", ", Shape)).Append(']');
        if (Nested)
        {
            sb.Append(", \"nested_blocksize\": ").Append(NestedBlockSize!.Value)
              .Append(", \"nested_dtype\": \"").Append(NestedDType).Append('"')
              .Append(", \"nested_offset\": ").Append(PythonFloat.Repr(NestedOffset!.Value));
        }
        return Encoding.UTF8.GetBytes(sb.Append('}').ToString());
    }

    /// <summary>Parses the JSON bytes of a quant_state tensor.</summary>
    /// <exception cref="InvalidDataException">Not JSON, a missing, unknown or mistyped field; the message names <paramref name="tensorName"/>.</exception>
    public static FourBitQuantState Parse(ReadOnlySpan<byte> json, string tensorName)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray());
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Tensor '{tensorName}' is not the JSON of a bitsandbytes quant state: {e.Message}");
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"Tensor '{tensorName}' holds JSON {root.ValueKind}, not the object of a bitsandbytes quant state.");
        foreach (JsonProperty p in root.EnumerateObject())
            if (!Keys.Contains(p.Name))
                throw new InvalidDataException($"Tensor '{tensorName}': unknown quant state field '{p.Name}' (bitsandbytes writes {string.Join(", ", Keys)}).");

        string quantType = String(root, "quant_type", tensorName);
        FourBitType type;
        try { type = FourBitTypeNames.Parse(quantType, $"Tensor '{tensorName}'"); }
        catch (FormatException e) { throw new InvalidDataException(e.Message); }
        string dtype = String(root, "dtype", tensorName);
        if (!DTypes.Contains(dtype))
            throw new InvalidDataException($"Tensor '{tensorName}': dtype '{dtype}' is not one bitsandbytes dequantizes 4-bit weights to ({string.Join(", ", DTypes)}).");
        int blockSize = Int(root, "blocksize", tensorName);
        if (!FourBitCodec.BlockSizes.Contains(blockSize))
            throw new InvalidDataException($"Tensor '{tensorName}': blocksize {blockSize} is not one bitsandbytes uses ({string.Join(", ", FourBitCodec.BlockSizes)}).");
        if (!root.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"Tensor '{tensorName}': the quant state has no 'shape' list.");
        var shape = new List<long>();
        foreach (JsonElement d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new InvalidDataException($"Tensor '{tensorName}': shape {shapeElement.GetRawText()} is not a list of non-negative integers.");
            shape.Add(v);
        }

        bool nested = root.TryGetProperty("nested_blocksize", out _) || root.TryGetProperty("nested_dtype", out _) || root.TryGetProperty("nested_offset", out _);
        int? nestedBlockSize = null;
        string? nestedDType = null;
        double? offset = null;
        if (nested)
        {
            nestedBlockSize = Int(root, "nested_blocksize", tensorName);
            if (nestedBlockSize <= 0) throw new InvalidDataException($"Tensor '{tensorName}': nested_blocksize {nestedBlockSize} is not positive.");
            nestedDType = String(root, "nested_dtype", tensorName);
            if (nestedDType != "float32")
                throw new InvalidDataException($"Tensor '{tensorName}': nested_dtype '{nestedDType}' is not float32, the dtype bitsandbytes keeps absmax in.");
            if (!root.TryGetProperty("nested_offset", out JsonElement o) || o.ValueKind != JsonValueKind.Number || !double.IsFinite(o.GetDouble()))
                throw new InvalidDataException($"Tensor '{tensorName}': the quant state has no numeric 'nested_offset'.");
            offset = o.GetDouble();
        }
        return new FourBitQuantState
        {
            QuantType = type, BlockSize = blockSize, DType = dtype, Shape = shape,
            NestedBlockSize = nestedBlockSize, NestedDType = nestedDType, NestedOffset = offset,
        };
    }

    private static string String(JsonElement root, string key, string tensorName) =>
        root.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new InvalidDataException($"Tensor '{tensorName}': the quant state has no string '{key}'.");

    private static int Int(JsonElement root, string key, string tensorName) =>
        root.TryGetProperty(key, out JsonElement v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)
            ? i
            : throw new InvalidDataException($"Tensor '{tensorName}': the quant state has no integer '{key}'.");
}
