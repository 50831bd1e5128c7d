namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// The 16-value code tables of bitsandbytes' 4-bit types, exactly as <c>functional.get_4bit_type</c>
/// builds them (a Python list, made float32, divided by its largest magnitude), and the bounds its
/// default backend quantizes with (<c>backends/default/ops.py</c>, <c>_get_4bit_quantize_bounds</c>):
/// the float32 midpoints between neighbours of the sorted table.
/// </summary>
public static class FourBitCode
{
    // get_4bit_type("nf4"): already in [-1, 1]; the doubles are rounded to float32 as torch.tensor does.
    private static readonly float[] Nf4Values =
    [
        (float)-1.0, (float)-0.6961928009986877, (float)-0.5250730514526367, (float)-0.39491748809814453,
        (float)-0.28444138169288635, (float)-0.18477343022823334, (float)-0.09105003625154495, (float)0.0,
        (float)0.07958029955625534, (float)0.16093020141124725, (float)0.24611230194568634, (float)0.33791524171829224,
        (float)0.44070982933044434, (float)0.5626170039176941, (float)0.7229568362236023, (float)1.0,
    ];

    // get_4bit_type("fp4"): sign bit 8, then 0b000 = 0, 0b001 = 0.0625, 0b010 = 8, 0b011 = 12, 0b100 = 4,
    // 0b101 = 6, 0b110 = 2, 0b111 = 3, divided by 12 in float32. The Python list's "-0" is the integer 0,
    // so code 8 is +0.0 like code 0.
    private static readonly float[] Fp4Values =
        new float[] { 0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, 0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f }.Select(v => v / 12f).ToArray();

    private static readonly (float[] Bounds, byte[] Order) Nf4Bounds = SortedBounds(Nf4Values);
    private static readonly (float[] Bounds, byte[] Order) Fp4Bounds = SortedBounds(Fp4Values);

    /// <summary>Code i's value in [-1, 1] (what nibble i decodes to, before the block's absmax scale).</summary>
    public static ReadOnlySpan<float> Table(FourBitType type) => type switch
    {
        FourBitType.Nf4 => Nf4Values,
        FourBitType.Fp4 => Fp4Values,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>The 15 float32 midpoints of the sorted table, increasing.</summary>
    public static ReadOnlySpan<float> Bounds(FourBitType type) => type == FourBitType.Nf4 ? Nf4Bounds.Bounds : Fp4Bounds.Bounds;

    /// <summary>
    /// The code of the i-th smallest table value (torch.argsort's stable order; NF4's table is sorted, so
    /// the identity). FP4's two zeros keep their table order: code 0 comes before code 8.
    /// </summary>
    public static ReadOnlySpan<byte> SortOrder(FourBitType type) => type == FourBitType.Nf4 ? Nf4Bounds.Order : Fp4Bounds.Order;

    /// <summary>
    /// The code bitsandbytes' default backend gives a scaled value in [-1, 1]: the sorted position
    /// <c>torch.bucketize(x, bounds)</c> returns (how many bounds are strictly below x, so a value equal to a
    /// midpoint takes the lower neighbour), mapped through <see cref="SortOrder"/>.
    /// </summary>
    public static byte Nearest(FourBitType type, float scaled)
    {
        ReadOnlySpan<float> bounds = Bounds(type);
        return SortOrder(type)[SortedBuckets.Below(bounds, scaled)];
    }

    private static (float[] Bounds, byte[] Order) SortedBounds(float[] table)
    {
        // Stable: equal values keep their index order, as torch.argsort does on the CPU.
        byte[] order = Enumerable.Range(0, table.Length).OrderBy(i => table[i]).Select(i => (byte)i).ToArray();
        var bounds = new float[table.Length - 1];
        for (int i = 0; i < bounds.Length; i++) bounds[i] = (table[order[i]] + table[order[i + 1]]) / 2f;
        return (bounds, order);
    }
}
