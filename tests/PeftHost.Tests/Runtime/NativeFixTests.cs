using PeftHost.Engine.Runtime;
using PeftHost.Formats.Elf;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests;

public class NativeFixTests
{
    // The library as TorchSharp ships it (the NuGet cache is only read, never patched).
    private static string ShippedLibrary()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void Marking_the_requirement_weak_changes_two_bytes_and_is_idempotent()
    {
        string shipped = ShippedLibrary();
        Assert.True(File.Exists(shipped), $"TorchSharp's native library not found at {shipped}");
        using var dir = new ScratchFolder();
        string copy = Path.Combine(dir.Path, "libLibTorchSharp.so");
        File.Copy(shipped, copy);
        byte[] original = File.ReadAllBytes(copy);

        Assert.Equal(VersionNeedState.Required, ElfVersionNeeds.Inspect(copy, NativeFixStatus.RequiredVersion));
        Assert.Equal(VersionNeedState.Required, ElfVersionNeeds.MarkWeak(copy, NativeFixStatus.RequiredVersion));
        Assert.Equal(VersionNeedState.Weak, ElfVersionNeeds.Inspect(copy, NativeFixStatus.RequiredVersion));
        byte[] once = File.ReadAllBytes(copy);
        Assert.Equal(original.Length, once.Length);
        int changed = original.Zip(once).Count(p => p.First != p.Second);
        Assert.Equal(1, changed); // vna_flags |= 0x2 touches the low byte only

        Assert.Equal(VersionNeedState.Weak, ElfVersionNeeds.MarkWeak(copy, NativeFixStatus.RequiredVersion));
        Assert.Equal(once, File.ReadAllBytes(copy));
        Assert.Equal(VersionNeedState.Absent, ElfVersionNeeds.Inspect(copy, "GLIBCXX_9.9.99"));
    }

    [Fact]
    public void The_test_output_folder_has_a_working_native_library()
    {
        string status = NativeFixStatus.Check(AppContext.BaseDirectory, out string detail);
        Assert.True(status is "applied" or "not-needed", detail);
        using var t = TorchSharp.torch.ones(3); // the native library loads
        Assert.Equal(3.0f, t.sum().item<float>());
    }

    [Fact]
    public void A_file_that_is_not_elf_is_a_clear_error()
    {
        using var dir = new ScratchFolder();
        string file = Path.Combine(dir.Path, "not-elf.so");
        File.WriteAllText(file, "hello");
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeeds.Inspect(file, "X"));
        Assert.Contains("not an ELF file", e.Message);
        Assert.Contains("not-elf.so", e.Message);
    }

    [Fact]
    public void Cuda_device_without_cuda_is_a_clear_error()
    {
        Assert.Equal(TorchSharp.DeviceType.CPU, TorchDevice.Parse("cpu").type);
        if (TorchSharp.torch.cuda.is_available()) return; // a CUDA machine runs the other branch of this check
        var e = Assert.Throws<ArgumentException>(() => TorchDevice.Parse("cuda:0"));
        Assert.Contains("CUDA is not available", e.Message);
        Assert.Contains("backend 'cpu'", e.Message);
        Assert.Throws<ArgumentException>(() => TorchDevice.Parse("tpu"));
    }
}

public class TorchCpuMathTests
{
    [Fact]
    public void The_mkl_vendor_shim_is_loaded_on_amd_cpus_and_reported_by_doctor()
    {
        bool amd = File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("vendor_id", StringComparison.Ordinal) && l.Contains("AuthenticAMD"));
        // The build compiles the shim with the machine's C compiler (.ci/run installs gcc); it is in the output folder.
        Assert.True(File.Exists(Path.Combine(AppContext.BaseDirectory, TorchCpuMath.ShimFile)), "the build did not produce " + TorchCpuMath.ShimFile);
        Assert.Equal(amd ? "loaded" : "not-needed", TorchCpuMath.Status);
        (int code, string stdout, string stderr) = Cli.Run("doctor", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(amd ? "loaded" : "not-needed", System.Text.Json.Nodes.JsonNode.Parse(stdout)!["torchsharp"]!["mkl_vendor_shim"]!.GetValue<string>());
    }

    [Fact]
    public void Logits_from_the_cli_match_transformers_with_the_shim()
    {
        using var dir = new ScratchFolder();
        string output = Path.Combine(dir.Path, "logits.safetensors");
        (int code, _, string stderr) = Cli.Run("logits", "--model", Conformance.Case("base_llama"), "--inputs", Path.Combine(Conformance.Case("base_llama"), "inputs.json"), "--out", output);
        Assert.True(code == 0, stderr);
        using var file = PeftHost.Formats.Safetensors.SafetensorsFile.Open(output);
        using var ours = PeftHost.Models.Checkpoint.TensorBridge.Read(file, "logits");
        using var reference = Conformance.Reference("base_llama/logits.safetensors");
        Assert.True(Tensors.MaxAbsDiff(ours, reference) < 1e-4);
    }
}
