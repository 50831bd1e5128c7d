namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// The float32 sum and mean torch computes on one CPU thread (ATen's SumKernel: a contiguous row of at
/// least 8 values is summed in 8-lane AVX2 vectors, four vectors side by side, with cascaded partial sums;
/// the leftover values first, then the lanes, are added to a scalar; shorter rows take the same scheme one
/// value wide). bitsandbytes' double quantization subtracts <c>absmax.mean()</c>, so a byte-exact
/// nested absmax needs the same float32 rounding. With several threads torch splits rows longer than
/// 32768 values, and its result changes with the thread count; this is the one-thread order.
/// </summary>
internal static class TorchFloatSum
{
    private const int Lanes = 8;
    private const int Ilp = 4;
    private const int Levels = 4;

    public static float Mean(ReadOnlySpan<float> x) => Sum(x) / x.Length;

    public static float Sum(ReadOnlySpan<float> x)
    {
        if (x.Length < Lanes) return RowSum(x, 1)[0];
        int vectors = x.Length / Lanes;
        float[] lanes = RowSum(x[..(vectors * Lanes)], Lanes);
        float total = 0f;
        for (int k = vectors * Lanes; k < x.Length; k++) total += x[k];
        for (int k = 0; k < Lanes; k++) total += lanes[k];
        return total;
    }

    // row_sum: the row as (size / 4, 4) elements of `width` floats; partial sums per column, then summed.
    private static float[] RowSum(ReadOnlySpan<float> x, int width)
    {
        int size = x.Length / width;
        int rows = size / Ilp;
        float[][] partial = MultiRowSum(x, width, rows);
        for (int i = rows * Ilp; i < size; i++) Add(partial[0], x.Slice(i * width, width));
        for (int k = 1; k < Ilp; k++) Add(partial[0], partial[k]);
        return partial[0];
    }

    // multi_row_sum: accumulators at four levels; every 2^p rows a level spills into the next.
    private static float[][] MultiRowSum(ReadOnlySpan<float> x, int width, int size)
    {
        int levelPower = Math.Max(4, CeilLog2(size) / Levels);
        int levelStep = 1 << levelPower;
        int levelMask = levelStep - 1;
        var acc = new float[Levels][][];
        for (int l = 0; l < Levels; l++)
        {
            acc[l] = new float[Ilp][];
            for (int k = 0; k < Ilp; k++) acc[l][k] = new float[width];
        }
        int i = 0;
        while (i + levelStep <= size)
        {
            for (int j = 0; j < levelStep; j++, i++) AddRow(acc[0], x, i, width);
            for (int j = 1; j < Levels; j++)
            {
                for (int k = 0; k < Ilp; k++)
                {
                    Add(acc[j][k], acc[j - 1][k]);
                    Array.Clear(acc[j - 1][k]);
                }
                if ((i & (levelMask << (j * levelPower))) != 0) break;
            }
        }
        for (; i < size; i++) AddRow(acc[0], x, i, width);
        for (int j = 1; j < Levels; j++)
            for (int k = 0; k < Ilp; k++) Add(acc[0][k], acc[j][k]);
        return acc[0];
    }

    private static void AddRow(float[][] acc, ReadOnlySpan<float> x, int row, int width)
    {
        for (int k = 0; k < Ilp; k++) Add(acc[k], x.Slice((row * Ilp + k) * width, width));
    }

    private static void Add(float[] into, ReadOnlySpan<float> values)
    {
        for (int l = 0; l < into.Length; l++) into[l] += values[l];
    }

    // c10's CeilLog2: 1 for x <= 2.
    private static int CeilLog2(int x) => x <= 2 ? 1 : 32 - (int)uint.LeadingZeroCount((uint)(x - 1));
}
