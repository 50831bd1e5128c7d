using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

// PEFT's LoraModel.add_weighted_adapter: "linear", "cat" and "svd" combinations, with PEFT's formulas.
public sealed partial class LoraModel
{
    /// <inheritdoc />
    public IReadOnlyList<string> CombinationTypes => ["linear", "cat", "svd"];

    /// <inheritdoc />
    public void AddWeightedAdapter(IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string newName, string combinationType, int? svdRank = null)
    {
        if (adapters.Count == 0) throw new ArgumentException("add_weighted_adapter needs at least one adapter.", nameof(adapters));
        if (weights.Count != adapters.Count) throw new ArgumentException($"add_weighted_adapter: {adapters.Count} adapters but {weights.Count} weights.", nameof(weights));
        if (Adapters.Contains(newName)) throw new ArgumentException($"An adapter named '{newName}' already exists.", nameof(newName));
        var configs = adapters.Select(GetConfig).ToList();
        if (configs.Any(c => c.UseDora)) throw new NotSupportedException("add_weighted_adapter does not combine DoRA adapters (their magnitudes have no weighted sum).");
        string type = adapters.Count == 1 ? "linear" : combinationType; // PEFT: one adapter can only be scaled
        if (!CombinationTypes.Contains(type)) throw new ArgumentException($"Invalid combination_type '{combinationType}': use {string.Join(", ", CombinationTypes)}.", nameof(combinationType));

        var ranks = configs.Select(c => c.R).ToList();
        int newRank = type switch
        {
            "linear" when ranks.Distinct().Count() != 1 => throw new ArgumentException($"All adapters must have the same r value when using combination_type linear (ranks: {string.Join(", ", ranks)})."),
            "linear" => ranks[0],
            "cat" => ranks.Sum(),
            _ => svdRank ?? ranks.Max(),
        };

        // The new config: the first adapter's, with r = lora_alpha = the new rank and the union of the targets.
        JsonObject json = configs[0].ToJson();
        json["r"] = newRank;
        json["lora_alpha"] = newRank;
        json["target_modules"] = UnionOfTargets(configs);
        string? init = json["init_lora_weights"]?.ToJsonString();
        json["init_lora_weights"] = false; // created empty (no PiSSA/OLoRA residual), then filled below
        AddAdapter(newName, ParseConfig(json));
        try
        {
            foreach ((string path, LoraLayer layer) in Layers)
            {
                if (!layer.Adapters.Contains(newName)) continue;
                var present = adapters.Select((a, i) => (Adapter: a, Weight: weights[i])).Where(p => layer.Adapters.Contains(p.Adapter)).ToList();
                if (present.Count == 0) continue; // the union reached a module none of them adapts: stays zero
                using var scope = NewDisposeScope();
                (Tensor a, Tensor b) = type switch
                {
                    "linear" => LinearCombination(layer, present),
                    "cat" => CatCombination(layer, present),
                    _ => SvdCombination(layer, path, present, newRank),
                };
                layer.HotswapFrom(newName, a, b, null, layer.Alpha(newName), layer.Scaling(newName));
            }
        }
        catch
        {
            DeleteAdapter(newName);
            throw;
        }
        json["init_lora_weights"] = init is null ? true : JsonNode.Parse(init);
        ReplaceConfig(newName, ParseConfig(json));
    }

    // A = Σ √(w·s)·Aᵢ, B = Σ √(w·s)·Bᵢ (PEFT's task_arithmetic on each factor).
    private static (Tensor, Tensor) LinearCombination(LoraLayer layer, List<(string Adapter, double Weight)> present)
    {
        Tensor? a = null, b = null;
        foreach ((string adapter, double weight) in present)
        {
            double f = Math.Sqrt(weight * layer.Scaling(adapter));
            (var ai, var bi) = layer.Factors(adapter);
            a = a is null ? ai * f : a + ai * f;
            b = b is null ? bi * f : b + bi * f;
        }
        return (a!, b!);
    }

    // A = cat(w·s·Aᵢ) over rows, B = cat(Bᵢ) over columns.
    private static (Tensor, Tensor) CatCombination(LoraLayer layer, List<(string Adapter, double Weight)> present)
    {
        var aParts = present.Select(p => layer.Factors(p.Adapter).A * (p.Weight * layer.Scaling(p.Adapter))).ToList();
        var bParts = present.Select(p => (Tensor)layer.Factors(p.Adapter).B).ToList();
        return (torch.cat(aParts, 0), torch.cat(bParts, 1));
    }

    // ΔW = Σ w·s·ΔWᵢ (ΔWᵢ already scaled: PEFT scales twice here), in [out, in]; B = U·diag(S), A = Vᴴ, truncated.
    private static (Tensor, Tensor) SvdCombination(LoraLayer layer, string path, List<(string Adapter, double Weight)> present, int rank)
    {
        Tensor? delta = null;
        foreach ((string adapter, double weight) in present)
        {
            Tensor d = layer.DeltaWeight(adapter) * (weight * layer.Scaling(adapter));
            delta = delta is null ? d : delta + d;
        }
        bool transposed = layer is LoraEmbedding || layer is LoraLinear { FanInFanOut: true };
        Tensor matrix = transposed ? delta!.t() : delta!;
        long maxRank = Math.Min(matrix.shape[0], matrix.shape[1]);
        if (rank > maxRank) throw new ArgumentException($"svd_rank {rank} is larger than '{path}' allows ({maxRank}).");
        var (u, s, vh) = torch.linalg.svd(matrix.to(ScalarType.Float32), fullMatrices: true);
        Tensor b = u.narrow(1, 0, rank).matmul(torch.diag(s.narrow(0, 0, rank)));
        Tensor a = vh.narrow(0, 0, rank);
        return (a.to(delta!.dtype), b.to(delta.dtype));
    }

    private static JsonNode UnionOfTargets(List<LoraConfig> configs)
    {
        var selectors = configs.Select(c => c.TargetModules ?? throw new TunerConfigException("add_weighted_adapter: an adapter has no target_modules.")).ToList();
        if (selectors.All(s => s.Names is not null))
            return new JsonArray([.. selectors.SelectMany(s => s.Names!).Distinct().Order(StringComparer.Ordinal).Select(n => JsonValue.Create(n))]);
        if (selectors.All(s => s.Names is null))
            return JsonValue.Create(string.Join("|", selectors.Select(s => $"({s.Pattern})")))!;
        throw new TunerConfigException("add_weighted_adapter: all adapter configs should follow the same target modules type (a list, or a regular expression).");
    }
}
