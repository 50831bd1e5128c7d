namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// Tensor names of a quantized linear layer in the checkpoints transformers saves with bitsandbytes. 4-bit
/// (<c>Linear4bit._save_to_state_dict</c>): <c>&lt;module&gt;.weight</c> holds the packed codes and
/// <c>&lt;module&gt;.weight.&lt;suffix&gt;</c> the quant state. 8-bit (<c>Linear8bitLt._save_to_state_dict</c>):
/// <c>&lt;module&gt;.weight</c> int8, <c>&lt;module&gt;.SCB</c>, <c>&lt;module&gt;.weight_format</c>.
/// </summary>
public static class BitsAndBytesKeys
{
    /// <summary>Per-block absmax: float32, or uint8 codes with double quantization.</summary>
    public const string Absmax = "absmax";

    /// <summary>The 16-value code table.</summary>
    public const string QuantMap = "quant_map";

    /// <summary>The nested blocks' float32 absmax (double quantization).</summary>
    public const string NestedAbsmax = "nested_absmax";

    /// <summary>The 256-value code of the nested absmax (double quantization).</summary>
    public const string NestedQuantMap = "nested_quant_map";

    /// <summary>8-bit: the float32 row absmax, next to the weight (<c>q_proj.SCB</c>).</summary>
    public const string Scb = "SCB";

    /// <summary>8-bit: a uint8 scalar naming the weight's layout; 0 is "row", the only one a checkpoint holds on disk.</summary>
    public const string WeightFormat = "weight_format";

    /// <summary>The name of one part of a 4-bit weight's quant state: <c>&lt;module&gt;.weight.&lt;part&gt;</c>.</summary>
    public static string FourBitPart(string module, string part) => module + ".weight." + part;

    /// <summary>The name of an 8-bit layer's tensor beside its weight: <c>&lt;module&gt;.SCB</c>, <c>&lt;module&gt;.weight_format</c>.</summary>
    public static string EightBitPart(string module, string part) => module + "." + part;
}
