using System.CommandLine;
using PeftHost.Formats.BitsAndBytes;

namespace PeftHost.Cli;

/// <summary>
/// <c>--load-in-4bit</c>, <c>--quant-type nf4|fp4</c>, <c>--double-quant</c>, <c>--compute-dtype f32|bf16|f16</c> and
/// <c>--load-in-8bit</c>: transformers' <c>BitsAndBytesConfig</c> fields as flags (QLoRA's base), read into one
/// config for the engine. <c>--quant-type</c> is the 4-bit code, not the GGUF weight type of <c>--quant</c>.
/// </summary>
internal sealed class QuantizationArguments
{
    private readonly Option<bool> _in4 = new("--load-in-4bit") { Description = "Quantize the base's linear layers to 4 bits as they load (bitsandbytes' Linear4bit; QLoRA)." };
    private readonly Option<string?> _type = new("--quant-type") { Description = "With --load-in-4bit: the 4-bit code, nf4 | fp4 (default nf4)." };
    private readonly Option<bool> _double = new("--double-quant") { Description = "With --load-in-4bit: quantize the block scales too (bnb_4bit_use_double_quant)." };
    private readonly Option<string?> _compute = new("--compute-dtype") { Description = "With --load-in-4bit: the dtype the weight is decoded to and multiplied in, f32 | bf16 | f16 (default f32)." };
    private readonly Option<bool> _in8 = new("--load-in-8bit") { Description = "Quantize the base's linear layers to 8 bits as they load (row-wise absmax int8, weight-only)." };

    /// <summary>Whether <c>--double-quant</c> was given.</summary>
    public bool DoubleQuant(ParseResult parse) => parse.GetValue(_double);

    /// <summary>The flags, to add to a command.</summary>
    public IEnumerable<Option> Options => [_in4, _type, _double, _compute, _in8];

    /// <summary>Adds the flags to <paramref name="command"/>.</summary>
    public QuantizationArguments AddTo(Command command)
    {
        foreach (Option o in Options) command.Options.Add(o);
        return this;
    }

    /// <summary>merge's <c>--quantize nf4|fp4|int8</c> (with <c>--double-quant</c>), or null for a float output.</summary>
    /// <exception cref="ArgumentException">Another value, or --double-quant without a 4-bit --quantize.</exception>
    public static BitsAndBytesConfig? ForOutput(string? quantize, bool doubleQuant) => quantize switch
    {
        null when doubleQuant => throw new ArgumentException("--double-quant needs --quantize nf4 or fp4."),
        null => null,
        "int8" when doubleQuant => throw new ArgumentException("--double-quant is for 4-bit: --quantize nf4 or fp4."),
        "int8" => new BitsAndBytesConfig { LoadIn8Bit = true },
        "nf4" => new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Nf4, UseDoubleQuant = doubleQuant },
        "fp4" => new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = FourBitType.Fp4, UseDoubleQuant = doubleQuant },
        _ => throw new ArgumentException($"--quantize '{quantize}': expected nf4, fp4 or int8."),
    };

    /// <summary>The config the flags ask for, or null when neither --load-in-4bit nor --load-in-8bit is given.</summary>
    /// <exception cref="ArgumentException">Both sizes, a 4-bit flag without --load-in-4bit, or an unknown code or dtype.</exception>
    /// <param name="parse">The parsed command line.</param>
    /// <param name="doubleQuantHasOtherUse">merge: <c>--double-quant</c> also serves <c>--quantize</c>, so alone it is not an error here.</param>
    public BitsAndBytesConfig? Read(ParseResult parse, bool doubleQuantHasOtherUse = false)
    {
        bool in4 = parse.GetValue(_in4), in8 = parse.GetValue(_in8);
        string? type = parse.GetValue(_type), compute = parse.GetValue(_compute);
        bool doubleQuant = parse.GetValue(_double) && (in4 || !doubleQuantHasOtherUse);
        if (in4 && in8) throw new ArgumentException("--load-in-4bit and --load-in-8bit: choose one.");
        if (!in4 && (type is not null || doubleQuant || compute is not null))
            throw new ArgumentException($"{(type is not null ? "--quant-type" : doubleQuant ? "--double-quant" : "--compute-dtype")} needs --load-in-4bit.");
        if (!in4 && !in8) return null;
        if (in8) return new BitsAndBytesConfig { LoadIn8Bit = true };
        FourBitType code = (type ?? "nf4") switch
        {
            "nf4" => FourBitType.Nf4,
            "fp4" => FourBitType.Fp4,
            _ => throw new ArgumentException($"--quant-type '{type}': expected nf4 or fp4 (the 4-bit code; GGUF weight types are --quant)."),
        };
        string dtype = (compute ?? "f32") switch
        {
            "f32" or "float32" => "float32",
            "bf16" or "bfloat16" => "bfloat16",
            "f16" or "float16" => "float16",
            _ => throw new ArgumentException($"--compute-dtype '{compute}': expected f32, bf16 or f16."),
        };
        return new BitsAndBytesConfig { LoadIn4Bit = true, QuantType = code, UseDoubleQuant = doubleQuant, ComputeDType = dtype };
    }
}
