using PeftHost.Engine.Inference;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Inference;

public class AdapterSpecTests
{
    [Fact]
    public void An_adapter_is_named_after_its_folder_without_dots()
    {
        Assert.Equal("lora_qv", AdapterSpec.FromFolder("/data/adapters/lora_qv/", 0).Name);
        Assert.Equal("my_adapter_v2", AdapterSpec.FromFolder("/data/my.adapter.v2", 1).Name); // '.' is not allowed in adapter names
        Assert.Equal("/data/adapters/lora_qv/", AdapterSpec.FromFolder("/data/adapters/lora_qv/", 0).Folder);
        Assert.Equal(1.0, AdapterSpec.FromFolder("/data/x").Scale);
    }

    [Fact]
    public void The_cli_reads_NAME_equals_DIR_and_reports_the_folder_it_did_not_find()
    {
        (int code, string stdout, string stderr) = Cli.Run("logits", "--model", Conformance.Case("base_llama"), "--adapter", "sql=/nonexistent/adapters/x",
            "--inputs", Path.Combine(Conformance.Case("base_llama"), "inputs.json"), "--out", Path.Combine(Path.GetTempPath(), $"pefthost-{Guid.NewGuid():N}.safetensors"),
            "--plugins", PluginDirs.Installed);
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/adapters/x", stderr + stdout);
    }

    [Fact]
    public void An_adapter_scale_must_name_an_adapter()
    {
        (int code, _, string stderr) = Cli.Run("logits", "--model", Conformance.Case("base_llama"), "--adapter", "a=" + Path.Combine(Conformance.Case("lora_qv"), "adapter"),
            "--adapter-scale", "b=0.5", "--backend", "llama", "--inputs", Path.Combine(Conformance.Case("base_llama"), "inputs.json"),
            "--out", Path.Combine(Path.GetTempPath(), $"pefthost-{Guid.NewGuid():N}.safetensors"), "--plugins", PluginDirs.Installed);
        Assert.Equal(2, code);
        Assert.Contains("--adapter-scale names 'b', which is not an --adapter (adapters: a)", stderr);
    }
}
