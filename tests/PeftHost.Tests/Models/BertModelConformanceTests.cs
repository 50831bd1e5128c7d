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

/// <summary>BertModel alone (keys with the bert. prefix stripped on load) reproduces the classifier's reference through its pooled output.</summary>
public class BertModelConformanceTests
{
    [Fact]
    public void Bert_model_pooled_output_gives_the_reference_logits_through_the_saved_classifier()
    {
        using var dir = new ScratchFolder();
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Conformance.Case("base_bert"), "config.json")))!;
        config["architectures"] = new JsonArray("BertModel");
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonString());
        Tensor weight, bias;
        using (var source = SafetensorsFile.Open(Path.Combine(Conformance.Case("base_bert"), "model.safetensors")))
        {
            SafetensorsWriter.Write(Path.Combine(dir.Path, "model.safetensors"), source.Tensors.Where(t => t.Name.StartsWith("bert.", StringComparison.Ordinal))
                .Select(t => SafetensorsWriteTensor.FromBytes(t.Name, t.DType, t.Shape, source.GetBytes(t.Name).ToArray())));
            weight = TensorBridge.Read(source, "classifier.weight");
            bias = TensorBridge.Read(source, "classifier.bias");
        }
        (_, nn.Module model) = ModelFactory.Load(dir.Path);
        using (model)
        using (weight)
        using (bias)
        using (var ids = Conformance.Inputs("base_bert", "input_ids")!)
        using (var mask = Conformance.Inputs("base_bert", "attention_mask"))
        using (var expected = Conformance.Reference("base_bert/logits.safetensors"))
        using (no_grad())
        {
            var bert = Assert.IsType<PeftHost.Models.Bert.BertModel>(model);
            Assert.Contains("encoder.layer.0.attention.self.query.weight", model.named_parameters().Select(p => p.name));
            (Tensor last, Tensor pooled) = bert.Forward(ids, mask, null);
            using (last)
            using (pooled)
            using (var logits = nn.functional.linear(pooled, weight, bias))
            {
                Assert.Equal([2L, 7, 64], last.shape);
                Assert.True(Tensors.MaxAbsDiff(logits, expected) < 1e-4);
            }
        }
    }
}
