using System.Diagnostics;
using PeftHost.Vulkan.Runtime;
using Xunit;

namespace PeftHost.Vulkan.Tests;

/// <summary>The committed SPIR-V is what shaders/compile.sh makes from the GLSL sources, and is what the assembly embeds.</summary>
public sealed class ShaderSpirvTests
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "shaders", "compile.sh")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No shaders/compile.sh above {AppContext.BaseDirectory}.");
    }

    [Fact]
    public void Committed_spirv_matches_a_fresh_compile_byte_for_byte()
    {
        string root = RepoRoot();
        string glslc = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, "glslc")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("glslc is not on PATH; the SPIR-V check needs it (Debian/Ubuntu: apt-get install -y glslc).");
        string temp = Directory.CreateTempSubdirectory("pefthost-spv-").FullName;
        try
        {
            var psi = new ProcessStartInfo("bash", [Path.Combine(root, "shaders", "compile.sh"), temp])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using Process p = Process.Start(psi)!;
            string stderr = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"{glslc} via compile.sh failed: {stderr}");

            string committedDir = Path.Combine(root, "shaders", "spv");
            string[] fresh = Directory.GetFiles(temp, "*.spv").Select(Path.GetFileName).Order().ToArray()!;
            string[] committed = Directory.GetFiles(committedDir, "*.spv").Select(Path.GetFileName).Order().ToArray()!;
            Assert.Equal(fresh, committed);
            foreach (string name in fresh)
            {
                Assert.True(File.ReadAllBytes(Path.Combine(temp, name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(committedDir, name))),
                    $"shaders/spv/{name} differs from a fresh compile; run shaders/compile.sh and commit the result.");
            }
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    [Fact]
    public void Assembly_embeds_every_committed_module()
    {
        string[] committed = Directory.GetFiles(Path.Combine(RepoRoot(), "shaders", "spv"), "*.spv")
            .Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(committed, VulkanShaderLibrary.Names);
        foreach (string name in committed)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(RepoRoot(), "shaders", "spv", name + ".spv")), VulkanShaderLibrary.Load(name));
        }
        Assert.Throws<VulkanException>(() => VulkanShaderLibrary.Load("nope"));
    }
}
