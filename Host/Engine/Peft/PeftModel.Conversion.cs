using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

// Saving a PiSSA / OLoRA adapter as a plain LoRA against the untouched base (PEFT 0.13's
// save_pretrained(path_initial_model_for_weight_conversion=...) and LoraModel.subtract_mutated_init).
public sealed partial class PeftModel
{
    /// <summary>
    /// Saves adapters as <see cref="SavePretrained(string, IReadOnlyList{string}?)"/> does, converted from
    /// PiSSA / OLoRA to plain LoRA against the original base weights. The model holds W_res with A, B;
    /// <paramref name="convertFromInitial"/> holds the factors A0, B0 right after initialisation, so
    /// W = W_res + s·B0·A0. The saved factors A' = [A; A0], B' = [B, −B0] give s·B'·A' = W_res + s·B·A − W,
    /// with r and lora_alpha doubled (rsLoRA: alpha × √2) so that the scaling stays, rank_pattern and
    /// alpha_pattern doubled, and init_lora_weights true, as PEFT writes them.
    /// </summary>
    /// <param name="directory">The output folder.</param>
    /// <param name="convertFromInitial">The adapter's state right after initialisation (e.g. <see cref="ExportAdapter"/> before training, or a folder read with <see cref="AdapterFolder.Read"/>).</param>
    /// <param name="selectedAdapters">PEFT's <c>selected_adapters</c> (default: all).</param>
    /// <exception cref="NotSupportedException">An adapter is not LoRA, or uses DoRA.</exception>
    /// <exception cref="ArgumentException">rsLoRA together with rank_pattern or alpha_pattern (PEFT refuses it too).</exception>
    /// <exception cref="InvalidDataException">The initial state lacks a factor or has another shape.</exception>
    public void SavePretrained(string directory, AdapterState convertFromInitial, IReadOnlyList<string>? selectedAdapters = null)
    {
        ArgumentNullException.ThrowIfNull(convertFromInitial);
        IReadOnlyList<string> names = selectedAdapters ?? Adapters;
        // Everything is converted before anything is written: an error leaves no half-saved folder.
        var converted = new List<AdapterState>();
        try
        {
            foreach (string name in names)
            {
                using AdapterState state = ExportAdapter(name);
                converted.Add(ConvertToLora(state, convertFromInitial));
            }
            foreach (AdapterState state in converted)
                AdapterFolder.Write(AdapterFolder.AdapterDirectory(directory, state.Name), state, prefixKeys: true);
        }
        finally
        {
            foreach (AdapterState state in converted) state.Dispose();
        }
    }

    /// <summary>
    /// <see cref="SavePretrained(string, AdapterState, IReadOnlyList{string}?)"/> with the initial adapter
    /// read from a PEFT adapter folder (PEFT's <c>path_initial_model_for_weight_conversion</c>).
    /// </summary>
    public void SavePretrained(string directory, string initialAdapterFolder, IReadOnlyList<string>? selectedAdapters = null)
    {
        using AdapterState initial = AdapterFolder.Read(initialAdapterFolder, "initial");
        SavePretrained(directory, initial, selectedAdapters);
    }

    private static AdapterState ConvertToLora(AdapterState trained, AdapterState initial)
    {
        if (trained.PeftType != "LORA")
            throw new NotSupportedException($"Adapter '{trained.Name}' is {trained.PeftType}: only LoRA (PiSSA / OLoRA initialised) adapters convert to plain LoRA.");
        JsonObject config = (JsonObject)trained.Config.DeepClone();
        bool rslora = config["use_rslora"]?.GetValue<bool>() ?? false;
        if (config["use_dora"]?.GetValue<bool>() ?? false)
            throw new NotSupportedException($"Adapter '{trained.Name}' uses DoRA, whose magnitude does not convert to plain LoRA factors.");
        bool patterns = config["rank_pattern"] is JsonObject { Count: > 0 } || config["alpha_pattern"] is JsonObject { Count: > 0 };
        if (rslora && patterns)
            throw new ArgumentException($"Adapter '{trained.Name}': converting to LoRA is not supported with rank_pattern or alpha_pattern together with use_rslora (as in PEFT).");

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using (no_grad())
                foreach ((string key, Tensor value) in trained.Tensors)
                {
                    bool isA = key.Contains("lora_A", StringComparison.Ordinal), isB = key.Contains("lora_B", StringComparison.Ordinal);
                    if (!isA && !isB)
                    {
                        // Not a low-rank factor (modules_to_save, biases): unaffected by the residual, kept as trained.
                        tensors[key] = value.clone();
                        continue;
                    }
                    if (!initial.Tensors.TryGetValue(key, out Tensor? start))
                        throw new InvalidDataException($"Adapter '{trained.Name}': the initial adapter has no tensor '{key}'.");
                    if (!start.shape.SequenceEqual(value.shape))
                        throw new InvalidDataException($"Adapter '{trained.Name}': tensor '{key}' is [{string.Join(", ", value.shape)}] but the initial one is [{string.Join(", ", start.shape)}].");
                    using Tensor init = start.to(value.dtype, value.device);
                    if (isA)
                        tensors[key] = torch.cat([value, init], 0);
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

        config["init_lora_weights"] = true;
        config["r"] = Doubled(config["r"], 2.0);
        config["lora_alpha"] = Doubled(config["lora_alpha"], rslora ? Math.Sqrt(2.0) : 2.0);
        foreach (string field in new[] { "rank_pattern", "alpha_pattern" })
            if (config[field] is JsonObject pattern)
                foreach (string k in pattern.Select(p => p.Key).ToList()) pattern[k] = Doubled(pattern[k], 2.0);
        return new AdapterState(trained.Name, config, tensors, trained.PluginState);
    }

    // An integer stays an integer when the factor keeps it one (PEFT's int * 2); √2 makes a float.
    private static JsonNode Doubled(JsonNode? value, double factor)
    {
        if (value is null) throw new InvalidDataException("The adapter config lacks r or lora_alpha.");
        // Through the JSON text: an in-memory JsonValue<int> refuses GetValue<double>.
        string text = value.ToJsonString();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        if (factor == 2.0 && long.TryParse(text, System.Globalization.NumberStyles.Integer, invariant, out long whole)) return JsonValue.Create(whole * 2);
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, invariant, out double number))
            throw new InvalidDataException($"The adapter config holds {text} where a number (r, lora_alpha or a pattern value) belongs.");
        return JsonValue.Create(number * factor);
    }
}
