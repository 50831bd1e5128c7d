using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.PeftReference;

/// <summary>
/// Prompt tuning, p-tuning (virtual token embeddings before the input; logits cover them) and
/// prefix tuning (per-layer key/value prefixes; logits cover the real tokens), against PEFT 0.13.2.
/// </summary>
public class PromptLearningReferenceTests
{
    [Theory]
    [InlineData("prompt_tuning_llama")]
    [InlineData("p_tuning_llama")]
    [InlineData("prefix_tuning_llama")]
    public void Prompt_learning_adapter_matches_peft_and_saves_like_it(string name)
    {
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_adapter");
        using (peft.DisableAdapter())
        using (Tensor logits = PeftCase.CausalLogits(peft, inputs)) c.AssertLogits(logits, "logits_base");
        c.AssertSavesLikePeft(peft);
        Assert.Throws<NotSupportedException>(() => peft.Merge());
    }

    [Theory]
    [InlineData("prompt_tuning_llama")]
    [InlineData("prefix_tuning_llama")]
    public void A_padding_mask_covers_only_the_real_tokens(string name)
    {
        // An all-ones mask must give the same logits as none: the virtual positions get ones too.
        var c = new PeftCase(name);
        using PluginCatalog catalog = PeftCase.Catalog();
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        using PeftModel peft = PeftModel.FromPretrained(model, c.AdapterDir(), catalog);
        using Tensor mask = ones_like(inputs.InputIds);
        using (no_grad())
        using (Tensor logits = peft.CausalLMForward(inputs.InputIds, mask))
            c.AssertLogits(logits, "logits_adapter");
    }

    [Theory]
    [InlineData("p_tuning_llama")]
    [InlineData("prefix_tuning_llama")]
    public void The_logits_runner_applies_the_prompt(string name)
    {
        // What `pefthost logits --model base --adapter adapter` computes.
        var c = new PeftCase(name);
        using var scratch = new ScratchFolder();
        string output = Path.Combine(scratch.Path, "logits.safetensors");
        LogitsRunner.Run(Path.Combine(c.Folder, "base"), [new AdapterSpec("default", c.AdapterDir())],
            Path.Combine(c.Folder, "inputs.json"), output, PluginDirs.Installed, ScalarType.Float32, CPU);
        using var file = SafetensorsFile.Open(output);
        using Tensor logits = TensorBridge.Read(file, "logits", ScalarType.Float32);
        c.AssertLogits(logits, "logits_adapter");
    }

    [Theory]
    [InlineData("prompt_tuning_llama")]
    [InlineData("lora_gpt2_conv1d")]
    public void Inputs_embeds_give_the_base_logits(string name)
    {
        // The entry prompt learning uses (transformers' inputs_embeds) is the ids forward without the lookup.
        var c = new PeftCase(name);
        using ModelInputs inputs = c.Inputs();
        using nn.Module model = c.LoadBase();
        var causal = (ICausalLM)model;
        using (no_grad())
        using (Tensor embeds = causal.EmbedInputs(inputs.InputIds))
        using (Tensor logits = causal.ForwardEmbeddings(embeds, inputs.AttentionMask))
            c.AssertLogits(logits, "logits_base");
    }
}
