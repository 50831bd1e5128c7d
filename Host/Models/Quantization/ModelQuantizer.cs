using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Surgery;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models.Bert;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// Which layers a <see cref="BitsAndBytesConfig"/> quantizes and the replacement itself, as transformers'
/// <c>replace_with_bnb_linear</c>: every Linear and GPT-2 Conv1D (its weight transposed to [out, in], as
/// transformers quantizes it) except the skipped modules, which default to the model's output head.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>
    /// The modules transformers keeps in full precision when <c>llm_int8_skip_modules</c> is null
    /// (<c>get_keys_to_not_convert</c>): the output head of a causal LM (<c>lm_head</c>), the classifier of a
    /// sequence classifier, the last module (the pooler's dense layer) of a bare BERT encoder.
    /// </summary>
    public static IReadOnlyList<string> DefaultSkipModules(nn.Module model) => model switch
    {
        ICausalLM => ["lm_head"],
        ISequenceClassifier => ["classifier"],
        BertModel => ["pooler.dense"],
        _ => [],
    };

    /// <summary>The paths of the Linear / Conv1D modules <paramref name="config"/> quantizes, in model order.</summary>
    public static IReadOnlyList<string> Targets(nn.Module model, BitsAndBytesConfig config)
    {
        IReadOnlyList<string> skip = config.SkipModules ?? DefaultSkipModules(model);
        return [.. model.named_modules()
            .Where(m => m.name.Length > 0 && m.module is Linear or Conv1D && !BitsAndBytesConfig.IsSkipped(m.name, skip))
            .Select(m => m.name)];
    }

    /// <summary>
    /// Replaces every target of <paramref name="config"/> by a quantized layer made from its current weight
    /// and bias; the full-precision module is disposed. Records the config in the model's config
    /// (<c>quantization_config</c>, as transformers does) when the model has one. Returns the quantized paths.
    /// </summary>
    /// <exception cref="InvalidOperationException">A target's weight is tied to another parameter (an output head sharing the embedding).</exception>
    public static IReadOnlyList<string> Quantize(nn.Module model, BitsAndBytesConfig config)
    {
        config.Validate("quantization config");
        IReadOnlyList<string> targets = Targets(model, config);
        CheckNotTied(model, targets);
        var surgeon = new ModelSurgeon(model);
        foreach (string path in targets)
        {
            nn.Module original = surgeon.Get(path);
            (Tensor weight, Tensor? bias) = WeightOf(original);
            QuantizedLinear q;
            using (no_grad())
            {
                using Tensor w = weight;
                q = Create(w, bias, config);
            }
            surgeon.Replace(path, q);
            original.Dispose();
        }
        RecordConfig(model, config);
        return targets;
    }

    /// <summary>A quantized layer of <paramref name="config"/>'s kind from a weight [out, in] and a bias (copied).</summary>
    public static QuantizedLinear Create(Tensor weight, Tensor? bias, BitsAndBytesConfig config) => config.LoadIn4Bit
        ? Linear4bit.Quantize(weight, bias, config.QuantType, config.UseDoubleQuant, QuantDTypes.Parse(config.ComputeDType))
        : Linear8bit.Quantize(weight, bias, weight.dtype);

    /// <summary>The [out, in] weight (a new tensor) and the bias of a Linear or Conv1D.</summary>
    internal static (Tensor Weight, Tensor? Bias) WeightOf(nn.Module module) => module switch
    {
        Linear l => (l.weight!.detach(), l.bias),
        Conv1D c => (c.weight.detach().t().contiguous(), c.bias),
        _ => throw new ArgumentException($"{module.GetType().Name} is not a Linear or Conv1D."),
    };

    /// <summary>Writes <paramref name="config"/> as the model config's <c>quantization_config</c>.</summary>
    internal static void RecordConfig(nn.Module model, BitsAndBytesConfig config)
    {
        Config.ModelConfig? modelConfig = model switch
        {
            ICausalLM c => c.Config,
            ISequenceClassifier s => s.Config,
            BertModel b => b.Config,
            _ => null,
        };
        if (modelConfig is not null) modelConfig.Raw["quantization_config"] = config.ToJson();
    }

    internal static void CheckNotTied(nn.Module model, IEnumerable<string> targets)
    {
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        foreach (string path in targets)
        {
            string weight = path + ".weight";
            string? other = tied.TryGetValue(weight, out string? t) ? t : tied.FirstOrDefault(kv => kv.Value == weight).Key;
            if (other is not null)
                throw new InvalidOperationException($"'{path}' shares its weight with '{other}', which stays in full precision; keep '{path}' in llm_int8_skip_modules.");
        }
    }
}
