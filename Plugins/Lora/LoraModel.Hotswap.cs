using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Abstractions.Tuning;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

// Hotswap (PEFT's load_adapter(..., hotswap=True)): new weights into the existing buffers, in place.
public sealed partial class LoraModel
{
    private int? _hotswapRank;

    /// <inheritdoc />
    public void PrepareForHotswap(int targetRank)
    {
        if (targetRank <= 0) throw new ArgumentOutOfRangeException(nameof(targetRank), $"The hotswap rank must be positive, got {targetRank}.");
        foreach ((string path, LoraLayer layer) in Layers)
            foreach (string adapter in layer.Adapters)
                if (layer.Rank(adapter) > targetRank)
                    throw new InvalidOperationException($"Adapter '{adapter}' has rank {layer.Rank(adapter)} at '{path}', above the hotswap rank {targetRank}.");
        foreach (LoraLayer layer in Layers.Values)
            foreach (string adapter in layer.Adapters) layer.PadRank(adapter, targetRank);
        _hotswapRank = targetRank;
    }

    /// <inheritdoc />
    public void Hotswap(string adapter, AdapterState state)
    {
        LoraConfig current = GetConfig(adapter);
        LoraConfig config = ParseConfig(state.Config);
        if (config.UseDora != current.UseDora)
            throw new InvalidDataException($"Hotswap into '{adapter}': use_dora is {config.UseDora.ToString().ToLowerInvariant()} in the new adapter and {current.UseDora.ToString().ToLowerInvariant()} in the loaded one.");

        var held = Layers.Where(l => l.Value.Adapters.Contains(adapter)).ToDictionary(l => l.Key, l => l.Value);
        var plan = new List<(LoraLayer Layer, string Path, Tensor A, Tensor B, Tensor? M)>();
        var targeted = new HashSet<string>(StringComparer.Ordinal);
        foreach (string key in state.Tensors.Keys)
        {
            string? path = ModulePathOf(key);
            if (path is null) continue;
            if (!held.ContainsKey(path))
                throw new InvalidDataException($"Hotswap into '{adapter}' refused: the new adapter targets '{path}', which the loaded adapter does not (hotswap cannot inject layers; load it as a new adapter instead).");
            targeted.Add(path);
        }
        foreach (string path in targeted)
        {
            LoraLayer layer = held[path];
            bool embedding = layer is LoraEmbedding;
            Tensor a = Take(state, path + (embedding ? ".lora_embedding_A" : ".lora_A.weight"), adapter);
            Tensor b = Take(state, path + (embedding ? ".lora_embedding_B" : ".lora_B.weight"), adapter);
            Tensor? m = config.UseDora ? Take(state, path + ".lora_magnitude_vector", adapter) : null;
            (TorchSharp.Modules.Parameter bufA, TorchSharp.Modules.Parameter bufB) = layer.Factors(adapter);
            foreach ((string name, Tensor t) in new[] { ("A", a), ("B", b) })
                if (t.dim() != 2 || !t.is_floating_point())
                    throw new InvalidDataException($"Hotswap into '{adapter}': '{path}' factor {name} is {t.dtype} [{string.Join(", ", t.shape)}]; expected a floating-point matrix.");
            long r = a.shape[0];
            if (r > bufA.shape[0])
                throw new InvalidDataException($"Hotswap into '{adapter}': '{path}' has rank {r} but the loaded buffers hold rank {bufA.shape[0]}. Call PrepareForHotswap with the largest rank first{(_hotswapRank is { } prepared ? $" (prepared: {prepared})" : "")}.");
            if (a.shape[1] != bufA.shape[1] || b.shape[0] != bufB.shape[0] || b.shape[1] != r)
                throw new InvalidDataException($"Hotswap into '{adapter}': '{path}' factors are [{string.Join(", ", a.shape)}] and [{string.Join(", ", b.shape)}]; the model expects [r, {bufA.shape[1]}] and [{bufB.shape[0]}, r].");
            if (m is not null && (!m.is_floating_point() || !m.shape.SequenceEqual(layer.Magnitude(adapter).shape)))
                throw new InvalidDataException($"Hotswap into '{adapter}': '{path}' magnitude is {m.dtype} [{string.Join(", ", m.shape)}]; expected floating-point [{string.Join(", ", layer.Magnitude(adapter).shape)}].");
            plan.Add((layer, path, a, b, m));
        }

        // Everything checked: now change the buffers (nothing is half-applied on an error above).
        foreach ((LoraLayer layer, string path, Tensor a, Tensor b, Tensor? m) in plan)
        {
            (int _, double alpha) = config.RankAndAlpha(path);
            layer.HotswapFrom(adapter, a, b, m, alpha, config.Scaling((int)a.shape[0], alpha));
        }
        foreach ((string path, LoraLayer layer) in held)
            if (!targeted.Contains(path)) layer.ZeroAdapter(adapter); // the new adapter leaves this module alone
        ReplaceConfig(adapter, config);
    }

    /// <summary>
    /// The adapter's state at its own rank (config <c>r</c> / <c>rank_pattern</c>): factors padded by
    /// <see cref="PrepareForHotswap"/>, or holding a hotswapped adapter of lower rank, are exported without their zero
    /// rows (A) and columns (B), so that a saved file matches its config and a plugin's next version imports it.
    /// A tail that is not zero (trained after padding) is real weight and is exported whole.
    /// </summary>
    protected override void OnExporting(string adapter, JsonObject savedConfig, IDictionary<string, Tensor> tensors)
    {
        LoraConfig config = GetConfig(adapter);
        using (no_grad())
        {
            foreach ((string path, LoraLayer layer) in Layers)
            {
                if (!layer.Adapters.Contains(adapter)) continue;
                bool embedding = layer is LoraEmbedding;
                string keyA = path + (embedding ? ".lora_embedding_A" : ".lora_A.weight"), keyB = path + (embedding ? ".lora_embedding_B" : ".lora_B.weight");
                int r = config.RankAndAlpha(path).R;
                if (!tensors.TryGetValue(keyA, out Tensor? a) || !tensors.TryGetValue(keyB, out Tensor? b) || a.shape[0] <= r) continue;
                long padded = a.shape[0] - r;
                using (Tensor tailA = a.narrow(0, r, padded))
                using (Tensor tailB = b.narrow(1, r, padded))
                using (Tensor nonZeroA = tailA.count_nonzero())
                using (Tensor nonZeroB = tailB.count_nonzero())
                    if (nonZeroA.item<long>() + nonZeroB.item<long>() != 0) continue;
                using (Tensor headA = a.narrow(0, 0, r)) tensors[keyA] = headA.clone();
                using (Tensor headB = b.narrow(1, 0, r)) tensors[keyB] = headB.clone();
                a.Dispose();
                b.Dispose();
            }
        }
    }

    private static Tensor Take(AdapterState state, string key, string adapter) =>
        state.Tensors.TryGetValue(key, out Tensor? t) ? t : throw new InvalidDataException($"Hotswap into '{adapter}': the new adapter has no tensor '{key}'.");

    // "model.layers.0.q_proj.lora_A.weight" -> "model.layers.0.q_proj"; null for keys that are not LoRA factors.
    private static string? ModulePathOf(string key)
    {
        foreach (string suffix in new[] { ".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".lora_embedding_B", ".lora_magnitude_vector" })
            if (key.EndsWith(suffix, StringComparison.Ordinal)) return key[..^suffix.Length];
        return null;
    }
}
