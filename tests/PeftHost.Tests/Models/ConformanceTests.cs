using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Models;

/// <summary>Our modules against the logits transformers produced for the shared samples (float32, CPU, 1e-4).</summary>
public class ConformanceTests
{
    private const double Tolerance = 1e-4;

    [Fact]
    public void Llama_matches_transformers()
    {
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_llama"));
        using (model)
        using (var ids = Conformance.Inputs("base_llama", "input_ids")!)
        using (var expected = Conformance.Reference("base_llama/logits.safetensors"))
        using (no_grad())
        using (var logits = ((ICausalLM)model).Forward(ids))
        {
            Assert.Equal(expected.shape, logits.shape);
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < Tolerance, $"max |diff| = {Tensors.MaxAbsDiff(logits, expected)}");
        }
    }

    [Fact]
    public void Llama_with_autograd_matches_the_in_place_inference_path()
    {
        // Without autograd some ops run in place; with it they must not, and the numbers must agree.
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_llama"));
        using (model)
        using (var ids = Conformance.Inputs("base_llama", "input_ids")!)
        using (var expected = Conformance.Reference("base_llama/logits.safetensors"))
        {
            foreach (var p in model.parameters()) p.requires_grad = true;
            using var logits = ((ICausalLM)model).Forward(ids);
            Assert.True(logits.requires_grad);
            Assert.True(Tensors.MaxAbsDiff(logits.detach(), expected) < Tolerance);
            using var loss = logits.square().mean();
            loss.backward(); // in-place ops on tensors autograd needs would throw here
            Assert.NotNull(model.named_parameters().First(p => p.name == "model.layers.0.mlp.up_proj.weight").parameter.grad);
        }
    }

    [Fact]
    public void Bert_sequence_classification_matches_transformers_with_padding()
    {
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_bert"));
        using (model)
        using (var ids = Conformance.Inputs("base_bert", "input_ids")!)
        using (var mask = Conformance.Inputs("base_bert", "attention_mask"))
        using (var expected = Conformance.Reference("base_bert/logits.safetensors"))
        using (no_grad())
        using (var logits = ((ISequenceClassifier)model).Forward(ids, mask))
        {
            Assert.Equal([2L, 2L], logits.shape);
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < Tolerance, $"max |diff| = {Tensors.MaxAbsDiff(logits, expected)}");
        }
    }

    [Fact]
    public void Gpt2_matches_transformers_with_tied_head()
    {
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_gpt2"));
        using (model)
        using (var ids = Conformance.Inputs("base_gpt2", "input_ids")!)
        using (var expected = Conformance.Reference("base_gpt2/logits.safetensors"))
        using (no_grad())
        using (var logits = ((ICausalLM)model).Forward(ids))
        {
            Assert.Equal(expected.shape, logits.shape);
            Assert.True(Tensors.MaxAbsDiff(logits, expected) < Tolerance, $"max |diff| = {Tensors.MaxAbsDiff(logits, expected)}");
            var names = model.named_parameters().Select(p => p.name).ToList();
            Assert.Contains("transformer.h.0.attn.c_attn.weight", names);
        }
    }

    [Fact]
    public void Lora_adapter_through_the_plugin_host_matches_peft()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed, HotReload = false });
        catalog.Scan();
        (_, nn.Module model) = ModelFactory.Load(Conformance.Case("base_llama"));
        using var peft = new PeftModel(model, catalog);
        using (AdapterState state = PeftHost.Engine.Peft.AdapterFolder.Read(Path.Combine(Conformance.Case("lora_qv"), "adapter"), "default"))
            peft.ImportAdapter(state);
        using var ids = Conformance.Inputs("lora_qv", "input_ids")!;
        using var expected = Conformance.Reference("lora_qv/logits_adapter.safetensors");
        using var logits = peft.Run(() => { using (no_grad()) return ((ICausalLM)model).Forward(ids); });
        Assert.True(Tensors.MaxAbsDiff(logits, expected) < Tolerance, $"max |diff| = {Tensors.MaxAbsDiff(logits, expected)}");
        Assert.Contains("model.layers.0.self_attn.q_proj.lora_A.default.weight", model.named_parameters().Select(p => p.name));
    }
}
