namespace PeftHost.Vulkan.Tests;

/// <summary>CPU references in double precision, and float32 rounding bounds.</summary>
internal static class CpuReference
{
    /// <summary>Unit roundoff of float32.</summary>
    public const double U = 1.0 / (1 << 24);

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
        {
            v[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        }
        return v;
    }

    /// <summary>y = W x in double, and Σ|w x| per row (the scale of the rounding error).</summary>
    public static (double[] Y, double[] AbsSum) MatVec(float[] w, float[] x, int rows, int cols)
    {
        var y = new double[rows];
        var abs = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                double p = (double)w[(long)r * cols + c] * x[c];
                y[r] += p;
                abs[r] += Math.Abs(p);
            }
        }
        return (y, abs);
    }

    public static double[] RmsNorm(float[] x, float[] w, int rows, int n, float eps)
    {
        var y = new double[rows * n];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int i = 0; i < n; i++)
            {
                ss += (double)x[r * n + i] * x[r * n + i];
            }
            double scale = 1 / Math.Sqrt(ss / n + eps);
            for (int i = 0; i < n; i++)
            {
                y[r * n + i] = x[r * n + i] * scale * w[i];
            }
        }
        return y;
    }

    public static double[] Softmax(float[] x, int rows, int n)
    {
        var y = new double[rows * n];
        for (int r = 0; r < rows; r++)
        {
            double m = double.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                m = Math.Max(m, x[r * n + i]);
            }
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                sum += Math.Exp(x[r * n + i] - m);
            }
            for (int i = 0; i < n; i++)
            {
                y[r * n + i] = Math.Exp(x[r * n + i] - m) / sum;
            }
        }
        return y;
    }

    /// <summary>RoPE reference; also returns each element's rotation angle for the tolerance.</summary>
    public static (double[] Y, double[] Theta) Rope(float[] x, int[] pos, int tokens, int heads, int headDim, double freqBase, bool neox)
    {
        var y = new double[x.Length];
        var theta = new double[x.Length];
        int half = headDim / 2;
        for (int t = 0; t < tokens; t++)
        {
            for (int h = 0; h < heads; h++)
            {
                int b = (t * heads + h) * headDim;
                for (int i = 0; i < half; i++)
                {
                    int i0 = neox ? b + i : b + 2 * i;
                    int i1 = neox ? b + i + half : b + 2 * i + 1;
                    double th = pos[t] * Math.Pow(freqBase, -2.0 * i / headDim);
                    y[i0] = x[i0] * Math.Cos(th) - x[i1] * Math.Sin(th);
                    y[i1] = x[i0] * Math.Sin(th) + x[i1] * Math.Cos(th);
                    theta[i0] = theta[i1] = th;
                }
            }
        }
        return (y, theta);
    }

    public static double SiluMul(float a, float b) => a / (1 + Math.Exp(-a)) * b;
}
