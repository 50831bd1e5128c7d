using PeftHost.Formats.Safetensors;

namespace PeftHost.Formats.Tests.Support;

/// <summary>
/// The bitsandbytes reference files under tests/fixtures/bnb, written in the lab by
/// tools/bnb-reference/make_cases.py from bitsandbytes' published algorithms (see the folder's README).
/// </summary>
internal static class BnbFixtures
{
    public static string Root
    {
        get
        {
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "tests", "fixtures", "bnb");
                if (File.Exists(Path.Combine(d, "Host.sln")) && Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No tests/fixtures/bnb in the repository above {AppContext.BaseDirectory}.");
        }
    }

    public static SafetensorsFile Codec(string name) => SafetensorsFile.Open(Path.Combine(Root, "codec", name + ".safetensors"));

    public static byte[] Bytes(this SafetensorsFile file, string name) => file.GetBytes(name).ToArray();

    public static sbyte[] SBytes(this SafetensorsFile file, string name) => file.GetBytes(name).ToArray().Select(b => (sbyte)b).ToArray();

    /// <summary>Float arrays as their bit patterns, so equality is bit for bit (and -0 differs from +0).</summary>
    public static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
