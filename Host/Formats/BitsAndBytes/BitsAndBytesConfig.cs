using System.Text.Json.Nodes;

namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// transformers' <c>BitsAndBytesConfig</c>: the <c>quantization_config</c> of config.json (with
/// <c>quant_method: "bitsandbytes"</c>) and the quantization a caller asks for at load time, with
/// transformers' field names and defaults. Fields whose value asks for something PeftHost does not do are
/// refused by name: <c>llm_int8_enable_fp32_cpu_offload</c> and <c>llm_int8_has_fp16_weight</c> when true,
/// <c>bnb_4bit_quant_storage</c> other than uint8, and any field transformers does not define.
/// <c>llm_int8_threshold</c> is read and written back but not applied: 8-bit weights are dequantized in the
/// forward pass (weight-only), without LLM.int8's outlier decomposition.
/// </summary>
public sealed class BitsAndBytesConfig
{
    /// <summary>The value of <c>quant_method</c>.</summary>
    public const string QuantMethod = "bitsandbytes";

    /// <summary>Compute dtypes (<c>bnb_4bit_compute_dtype</c>), torch's names.</summary>
    public static IReadOnlyList<string> ComputeDTypes { get; } = ["float32", "bfloat16", "float16"];

    private static readonly string[] Fields =
    [
        "quant_method", "_load_in_8bit", "_load_in_4bit", "llm_int8_threshold", "llm_int8_skip_modules",
        "llm_int8_enable_fp32_cpu_offload", "llm_int8_has_fp16_weight", "bnb_4bit_quant_type",
        "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage", "load_in_4bit", "load_in_8bit",
    ];

    /// <summary><c>load_in_4bit</c>: Linear layers become 4-bit (NF4 or FP4).</summary>
    public bool LoadIn4Bit { get; init; }

    /// <summary><c>load_in_8bit</c>: Linear layers become 8-bit (row-wise int8, weight-only here).</summary>
    public bool LoadIn8Bit { get; init; }

    /// <summary><c>bnb_4bit_quant_type</c> (transformers' default: fp4).</summary>
    public FourBitType QuantType { get; init; } = FourBitType.Fp4;

    /// <summary><c>bnb_4bit_use_double_quant</c>: quantize the absmax values too (<see cref="NestedAbsmax"/>).</summary>
    public bool UseDoubleQuant { get; init; }

    /// <summary><c>bnb_4bit_compute_dtype</c>: float32 (default), bfloat16 or float16.</summary>
    public string ComputeDType { get; init; } = "float32";

    /// <summary>
    /// <c>llm_int8_skip_modules</c>: modules kept in full precision (for 4-bit too). Null: the model's default,
    /// its output head, as transformers' <c>get_keys_to_not_convert</c>. A given list replaces the default.
    /// </summary>
    public IReadOnlyList<string>? SkipModules { get; init; }

    /// <summary><c>llm_int8_threshold</c>: kept for round trips; not applied (see the class remarks).</summary>
    public double Int8Threshold { get; init; } = 6.0;

    /// <summary>A short description: "nf4 + double quant, compute float32", "int8".</summary>
    public override string ToString() => LoadIn8Bit
        ? "int8 (weight-only)"
        : $"{QuantType.Name()}{(UseDoubleQuant ? " + double quant" : "")}, compute {ComputeDType}";

    /// <summary>
    /// Whether a module at <paramref name="path"/> stays in full precision, by transformers' rule
    /// (<c>_replace_with_bnb_linear</c>): its own name is in the list, or an entry equals the path or
    /// occurs in it followed by a dot.
    /// </summary>
    public static bool IsSkipped(string path, IEnumerable<string> skip)
    {
        string name = path[(path.LastIndexOf('.') + 1)..];
        foreach (string key in skip)
            if (key == name || key == path || path.Contains(key + ".", StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>Parses a <c>quantization_config</c> object.</summary>
    /// <exception cref="InvalidDataException">A field is unknown, mistyped or asks for what PeftHost does not do; the message names <paramref name="source"/> and the field.</exception>
    public static BitsAndBytesConfig Parse(JsonObject json, string source)
    {
        foreach ((string key, _) in json)
            if (!Fields.Contains(key))
                throw new InvalidDataException($"{source}: quantization_config field '{key}' is not a BitsAndBytesConfig field (known: {string.Join(", ", Fields)}).");
        string? method = OptionalString(json, "quant_method", source);
        if (method is not null && method != QuantMethod)
            throw new InvalidDataException($"{source}: quantization_config quant_method '{method}' is not '{QuantMethod}'; only bitsandbytes quantization is supported.");

        bool in4 = Bool(json, "load_in_4bit", source, false), in8 = Bool(json, "load_in_8bit", source, false);
        if (json.ContainsKey("_load_in_4bit") && Bool(json, "_load_in_4bit", source, false) != in4 && json.ContainsKey("load_in_4bit"))
            throw new InvalidDataException($"{source}: quantization_config '_load_in_4bit' and 'load_in_4bit' disagree.");
        if (json.ContainsKey("_load_in_8bit") && Bool(json, "_load_in_8bit", source, false) != in8 && json.ContainsKey("load_in_8bit"))
            throw new InvalidDataException($"{source}: quantization_config '_load_in_8bit' and 'load_in_8bit' disagree.");
        if (!json.ContainsKey("load_in_4bit")) in4 = Bool(json, "_load_in_4bit", source, false);
        if (!json.ContainsKey("load_in_8bit")) in8 = Bool(json, "_load_in_8bit", source, false);

        string quantType = OptionalString(json, "bnb_4bit_quant_type", source) ?? "fp4";
        FourBitType type;
        try { type = FourBitTypeNames.Parse(quantType, $"{source}: quantization_config bnb_4bit_quant_type"); }
        catch (FormatException e) { throw new InvalidDataException(e.Message); }

        string compute = OptionalString(json, "bnb_4bit_compute_dtype", source) ?? "float32";
        string storage = OptionalString(json, "bnb_4bit_quant_storage", source) ?? "uint8";
        if (storage != "uint8")
            throw new InvalidDataException($"{source}: quantization_config bnb_4bit_quant_storage '{storage}' is not supported; 4-bit codes are stored as uint8.");
        if (Bool(json, "llm_int8_enable_fp32_cpu_offload", source, false))
            throw new InvalidDataException($"{source}: quantization_config llm_int8_enable_fp32_cpu_offload is true; offloading parts of the model is not supported.");
        if (Bool(json, "llm_int8_has_fp16_weight", source, false))
            throw new InvalidDataException($"{source}: quantization_config llm_int8_has_fp16_weight is true; the 8-bit weight is the only copy kept, so 16-bit weights are not supported.");

        double threshold = 6.0;
        if (json["llm_int8_threshold"] is JsonNode t)
        {
            if (t is not JsonValue v || !v.TryGetValue(out double d) || !double.IsFinite(d))
                throw new InvalidDataException($"{source}: quantization_config llm_int8_threshold must be a number, got {t.ToJsonString()}.");
            threshold = d;
        }
        List<string>? skip = null;
        if (json["llm_int8_skip_modules"] is JsonNode s)
        {
            if (s is not JsonArray a || a.Any(e => e is not JsonValue ev || !ev.TryGetValue(out string? _)))
                throw new InvalidDataException($"{source}: quantization_config llm_int8_skip_modules must be null or a list of module names, got {s.ToJsonString()}.");
            skip = a.Select(e => e!.GetValue<string>()).ToList();
        }
        var config = new BitsAndBytesConfig
        {
            LoadIn4Bit = in4, LoadIn8Bit = in8, QuantType = type, ComputeDType = compute,
            UseDoubleQuant = Bool(json, "bnb_4bit_use_double_quant", source, false), SkipModules = skip, Int8Threshold = threshold,
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Checks that the config asks for one quantization PeftHost does.</summary>
    /// <exception cref="InvalidDataException">Both or neither of load_in_4bit / load_in_8bit, or an unknown compute dtype; the message names <paramref name="source"/>.</exception>
    public void Validate(string source)
    {
        if (LoadIn4Bit && LoadIn8Bit)
            throw new InvalidDataException($"{source}: quantization_config has load_in_4bit and load_in_8bit both true; only one can be used.");
        if (!LoadIn4Bit && !LoadIn8Bit)
            throw new InvalidDataException($"{source}: quantization_config has neither load_in_4bit nor load_in_8bit true: it asks for no quantization.");
        if (!ComputeDTypes.Contains(ComputeDType))
            throw new InvalidDataException($"{source}: quantization_config bnb_4bit_compute_dtype '{ComputeDType}' is not one of {string.Join(", ", ComputeDTypes)}.");
    }

    /// <summary>The object transformers' <c>BitsAndBytesConfig.to_dict()</c> gives (config.json's quantization_config), in its key order.</summary>
    public JsonObject ToJson() => new()
    {
        ["quant_method"] = QuantMethod,
        ["_load_in_8bit"] = LoadIn8Bit,
        ["_load_in_4bit"] = LoadIn4Bit,
        // A Python float: transformers' post_init refuses an integer threshold, and System.Text.Json would write 6.0 as 6.
        ["llm_int8_threshold"] = JsonNode.Parse(PythonFloat.Repr(Int8Threshold)),
        ["llm_int8_skip_modules"] = SkipModules is null ? null : new JsonArray([.. SkipModules.Select(m => (JsonNode?)JsonValue.Create(m))]),
        ["llm_int8_enable_fp32_cpu_offload"] = false,
        ["llm_int8_has_fp16_weight"] = false,
        ["bnb_4bit_quant_type"] = QuantType.Name(),
        ["bnb_4bit_use_double_quant"] = UseDoubleQuant,
        ["bnb_4bit_compute_dtype"] = ComputeDType,
        ["bnb_4bit_quant_storage"] = "uint8",
        ["load_in_4bit"] = LoadIn4Bit,
        ["load_in_8bit"] = LoadIn8Bit,
    };

    private static bool Bool(JsonObject json, string key, string source, bool fallback)
    {
        JsonNode? node = json[key];
        if (node is null) return fallback;
        return node is JsonValue v && v.TryGetValue(out bool b)
            ? b
            : throw new InvalidDataException($"{source}: quantization_config {key} must be true or false, got {node.ToJsonString()}.");
    }

    private static string? OptionalString(JsonObject json, string key, string source)
    {
        JsonNode? node = json[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out string? s)
            ? s
            : throw new InvalidDataException($"{source}: quantization_config {key} must be a string, got {node.ToJsonString()}.");
    }
}
