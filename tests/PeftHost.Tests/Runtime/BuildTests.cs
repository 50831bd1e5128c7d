using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests;

public class BuildTests
{
    [Theory]
    [InlineData("cpu", "TorchSharp-cpu")]
    [InlineData("cuda-linux", "TorchSharp-cuda-linux")]
    [InlineData("cuda-windows", "TorchSharp-cuda-windows")]
    public void TorchBackend_selects_the_runtime_package(string backend, string package)
    {
        (int code, string output) = Repo.Dotnet("msbuild", "Host/Cli/PeftHost.Cli.csproj", "-getItem:PackageReference", $"-p:TorchBackend={backend}");
        Assert.True(code == 0, output);
        Assert.Contains($"\"Identity\": \"{package}\"", output);
        foreach (string other in new[] { "TorchSharp-cpu", "TorchSharp-cuda-linux", "TorchSharp-cuda-windows" }.Where(o => o != package))
            Assert.DoesNotContain($"\"Identity\": \"{other}\"", output);
    }

    [Fact]
    public void An_unknown_backend_fails_the_build_with_a_clear_message()
    {
        (int code, string output) = Repo.Dotnet("msbuild", "Host/Cli/PeftHost.Cli.csproj", "-t:CheckTorchBackend", "-p:TorchBackend=rocm");
        Assert.NotEqual(0, code);
        Assert.Contains("Unknown TorchBackend 'rocm'", output);
    }
}
