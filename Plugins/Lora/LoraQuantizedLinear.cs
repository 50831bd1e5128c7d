using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA on a quantized linear layer, QLoRA's case (PEFT's <c>lora.bnb.Linear4bit</c> and <c>Linear8bitLt</c>):
/// the same factors, names and forward as <see cref="LoraLinear"/> (weight [out, in]), the adapter in float32
/// beside the frozen 4-bit or 8-bit weight, so a saved adapter is the same file as on a full-precision base.
/// What reads the base weight reads it dequantized (DoRA's norm, OLoRA); merging dequantizes, adds ΔW and
/// quantizes again, as PEFT does (rounded to the quantization's grid).
/// </summary>
/// <remarks>
/// PiSSA is refused here, with PEFT's message: its residual must be computed on the full-precision weight and
/// quantized afterwards. OLoRA runs on the dequantized weight and writes its residual back quantized (PEFT's
/// <c>olora_init</c>).
/// </remarks>
public sealed class LoraQuantizedLinear : LoraLinear
{
    /// <summary>Wraps a quantized linear layer.</summary>
    public LoraQuantizedLinear(QuantizedLinear baseLayer)
        : base(nameof(LoraQuantizedLinear), baseLayer, baseLayer.InFeatures, baseLayer.OutFeatures, fanInFanOut: false) { }

    /// <inheritdoc />
    protected override void CreateFactors(string adapter, int r, double scaling, string? init, string path)
    {
        if (init is not null && init.StartsWith("pissa", StringComparison.Ordinal))
            throw new TunerConfigException(
                $"adapter config field 'init_lora_weights': '{init}' on '{path}', whose weight is quantized ({BaseWeight.Quantized!.Quantization}): " +
                "Please initialize PiSSA under float32, float16, or bfloat16. Subsequently, re-quantize the residual model to help minimize quantization errors.");
        base.CreateFactors(adapter, r, scaling, init, path);
    }
}
