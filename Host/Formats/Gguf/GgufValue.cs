using System.Globalization;

namespace PeftHost.Formats.Gguf;

/// <summary>
/// One GGUF metadata value: a scalar (boxed as the matching CLR type), a string, or an array
/// (a CLR array of the element type for scalars and strings, or <see cref="GgufValue"/>[] for nested arrays).
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    /// <summary>The value's GGUF type.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the element type; otherwise unused.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The CLR value: byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, or an array.</summary>
    public object Value { get; }

    /// <summary>Wraps an 8-bit unsigned integer.</summary>
    public static GgufValue FromUInt8(byte v) => new(GgufValueType.UInt8, v);
    /// <summary>Wraps an 8-bit signed integer.</summary>
    public static GgufValue FromInt8(sbyte v) => new(GgufValueType.Int8, v);
    /// <summary>Wraps a 16-bit unsigned integer.</summary>
    public static GgufValue FromUInt16(ushort v) => new(GgufValueType.UInt16, v);
    /// <summary>Wraps a 16-bit signed integer.</summary>
    public static GgufValue FromInt16(short v) => new(GgufValueType.Int16, v);
    /// <summary>Wraps a 32-bit unsigned integer.</summary>
    public static GgufValue FromUInt32(uint v) => new(GgufValueType.UInt32, v);
    /// <summary>Wraps a 32-bit signed integer.</summary>
    public static GgufValue FromInt32(int v) => new(GgufValueType.Int32, v);
    /// <summary>Wraps a 32-bit float.</summary>
    public static GgufValue FromFloat32(float v) => new(GgufValueType.Float32, v);
    /// <summary>Wraps a boolean.</summary>
    public static GgufValue FromBool(bool v) => new(GgufValueType.Bool, v);
    /// <summary>Wraps a string.</summary>
    public static GgufValue FromString(string v) => new(GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    /// <summary>Wraps a 64-bit unsigned integer.</summary>
    public static GgufValue FromUInt64(ulong v) => new(GgufValueType.UInt64, v);
    /// <summary>Wraps a 64-bit signed integer.</summary>
    public static GgufValue FromInt64(long v) => new(GgufValueType.Int64, v);
    /// <summary>Wraps a 64-bit float.</summary>
    public static GgufValue FromFloat64(double v) => new(GgufValueType.Float64, v);

    /// <summary>
    /// Wraps an array. <paramref name="elements"/> must be a CLR array whose element type matches
    /// <paramref name="elementType"/> (<see cref="GgufValue"/>[] when it is <see cref="GgufValueType.Array"/>).
    /// </summary>
    public static GgufValue FromArray(GgufValueType elementType, Array elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        Type expected = ClrType(elementType);
        if (elements.GetType().GetElementType() != expected)
        {
            throw new ArgumentException($"A GGUF {elementType} array needs a {expected.Name}[], got {elements.GetType().Name}.", nameof(elements));
        }
        return new GgufValue(GgufValueType.Array, elements, elementType);
    }

    /// <summary>A string array (such as tokenizer.ggml.tokens).</summary>
    public static GgufValue FromStrings(IEnumerable<string> values) => FromArray(GgufValueType.String, values.ToArray());

    /// <summary>The string, or an error naming the actual type.</summary>
    public string AsString() => Value as string ?? throw WrongType(GgufValueType.String);

    /// <summary>The array elements, or an error naming the actual type.</summary>
    public Array AsArray() => Type == GgufValueType.Array ? (Array)Value : throw WrongType(GgufValueType.Array);

    /// <summary>Any integer type as a 64-bit unsigned value (negative values are an error).</summary>
    public ulong AsUInt64() => Value switch
    {
        byte or ushort or uint or ulong => Convert.ToUInt64(Value, CultureInfo.InvariantCulture),
        sbyte or short or int or long when Convert.ToInt64(Value, CultureInfo.InvariantCulture) >= 0 =>
            Convert.ToUInt64(Value, CultureInfo.InvariantCulture),
        _ => throw WrongType(GgufValueType.UInt64),
    };

    /// <summary>Any float or integer type as a double.</summary>
    public double AsDouble() => Value switch
    {
        byte or sbyte or ushort or short or uint or int or ulong or long or float or double =>
            Convert.ToDouble(Value, CultureInfo.InvariantCulture),
        _ => throw WrongType(GgufValueType.Float64),
    };

    /// <summary>The CLR type that holds values of <paramref name="type"/>.</summary>
    public static Type ClrType(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.Array => typeof(GgufValue),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown GGUF value type."),
    };

    /// <summary>Wraps a scalar CLR value of a GGUF type (used by the reader and for arrays of arrays).</summary>
    internal static GgufValue FromScalar(GgufValueType type, object value) => new(type, value);

    private InvalidOperationException WrongType(GgufValueType wanted) =>
        new($"GGUF value is {Type}{(Type == GgufValueType.Array ? $" of {ElementType}" : "")}, not {wanted}.");

    /// <inheritdoc/>
    public override string ToString() => Type == GgufValueType.Array
        ? $"[{ElementType} x {((Array)Value).Length}]"
        : Convert.ToString(Value, CultureInfo.InvariantCulture) ?? "";
}
