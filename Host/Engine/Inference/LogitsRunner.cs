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
    /// <exception cref="InvalidDataException">inputs.json is malformed or does not fit the model (ids outside the vocabulary, a bad mask, longer than the context).</exception>
    public static long[] Run(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string inputsPath, string outPath, string pluginsFolder, ScalarType dtype, Device device, bool merge = false,
        BitsAndBytesConfig? quantization = null)
    {
        // The inputs first: a bad file is reported before any weights are read.
        using ModelInputs inputs = ModelInputs.Read(inputsPath);
        using AdaptedModel loaded = AdaptedModel.Load(modelFolder, adapters, pluginsFolder, dtype, device, quantization);
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
            Tensor Forward()
            {
                using (torch.no_grad())
                    return loaded.Peft is { } peft && model is ICausalLM ? peft.CausalLMForward(onDevice.InputIds, onDevice.AttentionMask) : forward();
            }
            Tensor result;
            // Every tensor the forward checks came from the file: its errors name the file.
            try { result = loaded.Run(Forward); }
            catch (ModelInputException e) { throw new InvalidDataException($"{inputsPath}: {e.Message}", e); }
            using Tensor logits = result;
            SafetensorsWriter.Write(outPath, [TensorBridge.ToWrite("logits", logits.to(ScalarType.Float32))], new Dictionary<string, string> { ["format"] = "pt" });
            return logits.shape;
        }
        finally
        {
            if (!ReferenceEquals(onDevice, inputs)) onDevice.Dispose();
        }
    }
}
