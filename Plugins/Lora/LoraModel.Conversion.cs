using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

// Saving a PiSSA / OLoRA adapter as a plain LoRA against the untouched base (PEFT 0.13's
// save_pretrained(path_initial_model_for_weight_conversion=...) and LoraModel.subtract_mutated_init).
public sealed partial class LoraModel
{
    private const string FactorA = ".lora_A.weight", FactorB = ".lora_B.weight";

    /// <summary>
    /// The model holds W_res with A, B; <paramref name="initial"/> holds A0, B0 right after initialisation, so
    /// W = W_res + s·B0·A0. The converted factors A' = [A; A0], B' = [B, −B0] give s·B'·A' = W_res + s·B·A − W,
    /// with r and lora_alpha doubled (rsLoRA: alpha × √2) so that the scaling stays, rank_pattern and
    /// alpha_pattern doubled, and init_lora_weights true, as PEFT writes them. Tensors other than the factors
    /// of linear layers (saved base layers, embedding factors, which no PiSSA / OLoRA touches) stay as trained.
    /// </summary>
    /// <exception cref="NotSupportedException">The adapter uses DoRA.</exception>
    /// <exception cref="ArgumentException">rsLoRA together with rank_pattern or alpha_pattern (PEFT refuses it too).</exception>
    /// <exception cref="InvalidDataException">The initial state lacks a factor or has another shape.</exception>
    public AdapterState ConvertFromInitial(AdapterState trained, AdapterState initial)
    {
        ArgumentNullException.ThrowIfNull(trained);
        ArgumentNullException.ThrowIfNull(initial);
        LoraConfig parsed = ParseConfig(trained.Config);
        if (parsed.UseDora)
            throw new NotSupportedException($"Adapter '{trained.Name}' uses DoRA, whose magnitude does not convert to plain LoRA factors.");
        if (parsed.UseRsLora && (parsed.RankPattern.Count > 0 || parsed.AlphaPattern.Count > 0))
            throw new ArgumentException($"Adapter '{trained.Name}': converting to LoRA is not supported with rank_pattern or alpha_pattern together with use_rslora (as in PEFT).");

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using (no_grad())
                foreach ((string key, Tensor value) in trained.Tensors)
                {
                    bool isA = key.EndsWith(FactorA, StringComparison.Ordinal), isB = key.EndsWith(FactorB, StringComparison.Ordinal);
                    if (!isA && !isB)
                    {
                        tensors[key] = value.clone();
                        continue;
                    }
                    if (!initial.Tensors.TryGetValue(key, out Tensor? start))
                        throw new InvalidDataException($"Adapter '{trained.Name}': the initial adapter has no tensor '{key}'.");
                    if (!start.shape.SequenceEqual(value.shape))
                        throw new InvalidDataException($"Adapter '{trained.Name}': tensor '{key}' is [{string.Join(", ", value.shape)}] but the initial one is [{string.Join(", ", start.shape)}].");
                    using Tensor init = start.to(value.dtype, value.device);
                    if (isA)
                    {
                        tensors[key] = torch.cat([value, init], 0);
                    }
                    else
                    {
                        using Tensor negated = init.neg();
                        tensors[key] = torch.cat([value, negated], 1);
                    }
                }
        }
        catch
        {
            foreach (Tensor t in tensors.Values) t.Dispose();
            throw;
        }

        JsonObject config = (JsonObject)trained.Config.DeepClone();
        config["init_lora_weights"] = true;
        config["r"] = Scaled(config["r"], 2.0);
        config["lora_alpha"] = Scaled(config["lora_alpha"], parsed.UseRsLora ? Math.Sqrt(2.0) : 2.0);
        foreach (string field in new[] { "rank_pattern", "alpha_pattern" })
            if (config[field] is JsonObject pattern)
                foreach (string k in pattern.Select(p => p.Key).ToList()) pattern[k] = Scaled(pattern[k], 2.0);
        return new AdapterState(trained.Name, config, tensors);
    }

    // An integer stays an integer when the factor keeps it one (PEFT's int * 2); √2 makes a float.
    private static JsonNode Scaled(JsonNode? value, double factor)
    {
        if (value is null) throw new InvalidDataException("The adapter config lacks r or lora_alpha.");
        // Through the JSON text: an in-memory JsonValue<int> refuses GetValue<double>.
        string text = value.ToJsonString();
        if (factor == 2.0 && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long whole)) return JsonValue.Create(whole * 2);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
            throw new InvalidDataException($"The adapter config holds {text} where a number (r, lora_alpha or a pattern value) belongs.");
        return JsonValue.Create(number * factor);
    }
}
