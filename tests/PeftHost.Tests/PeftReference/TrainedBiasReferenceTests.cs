using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// VeRA's and FourierFT's <c>bias</c> option as PEFT 0.13.2 has it (bias_saving_0132): "all" trains every bias,
/// "vera_only" / "fourier_only" the adapted modules' biases, and none of them is saved with the adapter.
/// </summary>
public class TrainedBiasReferenceTests
{
    [Theory]
    [InlineData("vera_bias_all", """{"peft_type": "VERA", "r": 4, "bias": "all", "target_modules": ["q_proj"]}""")]
    [InlineData("vera_bias_vera_only", """{"peft_type": "VERA", "r": 4, "bias": "vera_only", "target_modules": ["q_proj"]}""")]
    [InlineData("fourierft_bias_fourier_only", """{"peft_type": "FOURIERFT", "n_frequency": 8, "bias": "fourier_only", "target_modules": ["q_proj"]}""")]
    public void Biases_train_as_in_peft_and_are_not_saved(string entry, string config)
    {
        JsonObject fact = new PeftCase("bias_saving_0132").Meta["bias_saving"]![entry]!.AsObject();
        using PluginCatalog catalog = PeftCase.Catalog();
        using nn.Module model = ModelFactory.Load(Path.Combine(PeftCase.Root, "bases", "llama_bias")).Model;
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("default", JsonNode.Parse(config)!.AsObject());

        var trainedBiases = peft.NamedParameters().Where(p => p.Parameter.requires_grad && p.Name.EndsWith("bias", StringComparison.Ordinal)).Select(p => p.Name).ToList();
        Assert.Equal(fact["trainable_bias_parameters"]!.GetValue<int>(), trainedBiases.Count);
        Assert.All(fact["examples"]!.AsArray(), e => Assert.Contains(e!.GetValue<string>(), trainedBiases));

        using var dir = new ScratchFolder();
        peft.SavePretrained(dir.Path);
        using var file = SafetensorsFile.Open(Path.Combine(dir.Path, AdapterFolder.WeightsFile));
        Assert.Equal(fact["saved_bias_keys"]!.GetValue<int>(), file.Tensors.Count(t => t.Name.EndsWith("bias", StringComparison.Ordinal)));

        peft.DeleteAdapter("default");
        Assert.DoesNotContain(model.parameters(), p => p.requires_grad);
    }
}
