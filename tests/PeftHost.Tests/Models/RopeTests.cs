using PeftHost.Models.Config;
using PeftHost.Models.Layers;
using Xunit;

namespace PeftHost.Tests.Models;

/// <summary>inv_freq against an independent computation of transformers' formulas (in double).</summary>
public class RopeTests
{
    private static double[] Default(int dim, double theta) => [.. Enumerable.Range(0, dim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / dim))];

    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6 * Math.Abs(expected[i]) + 1e-12, $"inv_freq[{i}]: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void Default_and_linear_scaling()
    {
        using var plain = RotaryEmbedding.InverseFrequencies(64, 10000, null);
        AssertClose(Default(64, 10000), plain.data<float>().ToArray());
        using var linear = RotaryEmbedding.InverseFrequencies(64, 500000, new RopeScaling("linear", 4));
        AssertClose([.. Default(64, 500000).Select(f => f / 4)], linear.data<float>().ToArray());
    }

    [Fact]
    public void Llama3_scaling_keeps_high_frequencies_divides_low_ones_and_interpolates_between()
    {
        // Llama 3.1's values: factor 8, low 1, high 4, original context 8192, theta 500000, head_dim 128.
        var scaling = new RopeScaling("llama3", 8, 1, 4, 8192);
        double[] expected = [.. Default(128, 500000).Select(f =>
        {
            double wavelen = 2 * Math.PI / f;
            if (wavelen < 8192 / 4.0) return f;
            if (wavelen > 8192 / 1.0) return f / 8;
            double smooth = (8192 / wavelen - 1) / (4 - 1);
            return (1 - smooth) * f / 8 + smooth * f;
        })];
        using var actual = RotaryEmbedding.InverseFrequencies(128, 500000, scaling);
        AssertClose(expected, actual.data<float>().ToArray());
        // All three regimes occur for these values.
        double[] wavelens = [.. Default(128, 500000).Select(f => 2 * Math.PI / f)];
        Assert.Contains(wavelens, w => w < 2048);
        Assert.Contains(wavelens, w => w > 8192);
        Assert.Contains(wavelens, w => w is >= 2048 and <= 8192);
    }

    [Fact]
    public void Rope_scaling_is_read_from_config_json()
    {
        var c = (LlamaConfig)ModelConfigReader.Parse(ModelFolders.LlamaConfig(j => j["rope_scaling"] = new System.Text.Json.Nodes.JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
        }));
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), c.RopeScaling);
        var e = Assert.Throws<NotSupportedException>(() => ModelConfigReader.Parse(ModelFolders.LlamaConfig(j => j["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "yarn", ["factor"] = 2.0 })));
        Assert.Equal("config.json: rope_scaling type 'yarn' is not supported (supported: linear, llama3).", e.Message);
    }
}
