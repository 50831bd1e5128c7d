namespace PeftHost.Vulkan.Runtime;

/// <summary>The SPIR-V modules embedded in this assembly (compiled from shaders/ by shaders/compile.sh).</summary>
public static class VulkanShaderLibrary
{
    private const string Prefix = "PeftHost.Vulkan.Shaders.";

    /// <summary>The names of the embedded shaders (file names without .spv).</summary>
    public static IReadOnlyList<string> Names { get; } = typeof(VulkanShaderLibrary).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".spv", StringComparison.Ordinal))
        .Select(n => n[Prefix.Length..^4])
        .Order(StringComparer.Ordinal)
        .ToArray();

    /// <summary>The SPIR-V bytes of <paramref name="name"/> (e.g. <c>matvec_q4_0</c>).</summary>
    public static byte[] Load(string name)
    {
        using Stream stream = typeof(VulkanShaderLibrary).Assembly.GetManifestResourceStream(Prefix + name + ".spv")
            ?? throw new VulkanException($"Shader '{name}' is not embedded in PeftHost.Vulkan (known: {string.Join(", ", Names)}).");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        if (bytes.Length % 4 != 0 || bytes.Length < 20 || BitConverter.ToUInt32(bytes, 0) != 0x07230203)
        {
            throw new VulkanException($"Shader '{name}' is not valid SPIR-V (bad size or magic).");
        }
        return bytes;
    }
}
