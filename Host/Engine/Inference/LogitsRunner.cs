using PeftHost.Formats.BitsAndBytes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models;
using PeftHost.Models.Checkpoint;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// Runs a model folder (optionally with PEFT adapters through the plugins) on a batch of ids and
/// writes the logits as one float32 tensor <c>logits</c> to a safetensors file.
/// </summary>
public static class LogitsRunner
{
    /// <summary>
    /// Computes the logits: [batch, seq, vocab] for causal LMs ([batch, virtual + seq, vocab] with a
    /// prompt tuning or p-tuning adapter), [batch, num_labels] for sequence classification; every
    /// adapter given is active, and with <paramref name="merge"/> merged into the base weights before
    /// the forward. Returns the output's shape.
    /// </summary>
    public static long[] Run(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string inputsPath, string outPath, string pluginsFolder, ScalarType dtype, Device device, bool merge = false,
        BitsAndBytesConfig? quantization = null)
    {
        using AdaptedModel loaded = AdaptedModel.Load(modelFolder, adapters, pluginsFolder, dtype, device, quantization);
        using ModelInputs inputs = ModelInputs.Read(inputsPath);
        ModelInputs onDevice = inputs.To(device);
        try
        {
            nn.Module model = loaded.Model;
            Func<Tensor> forward = model switch
            {
                ICausalLM lm => () => lm.Forward(onDevice.InputIds, onDevice.AttentionMask),
                ISequenceClassifier c => () => c.Forward(onDevice.InputIds, onDevice.AttentionMask, onDevice.TokenTypeIds),
                _ => throw new NotSupportedException($"{model.GetType().Name} has no logits head: use a causal LM or a sequence classification model."),
            };
            if (merge) loaded.MergeActiveAdapters();
            // A causal LM with adapters goes through PEFT's causal LM forward, so prompt-learning adapters add their virtual tokens.
            using Tensor logits = loaded.Run(() =>
            {
                using (torch.no_grad())
                    return loaded.Peft is { } peft && model is ICausalLM ? peft.CausalLMForward(onDevice.InputIds, onDevice.AttentionMask) : forward();
            });
            SafetensorsWriter.Write(outPath, [TensorBridge.ToWrite("logits", logits.to(ScalarType.Float32))], new Dictionary<string, string> { ["format"] = "pt" });
            return logits.shape;
        }
        finally
        {
            if (!ReferenceEquals(onDevice, inputs)) onDevice.Dispose();
        }
    }
}
