using PeftHost.Fuzz.Targets;

namespace PeftHost.Fuzz;

/// <summary>Every fuzz target, by name.</summary>
public static class FuzzTargets
{
    /// <summary>The targets in the order <c>--list</c> prints them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new SafetensorsTarget(), new SafetensorsIndexTarget(), new GgufTarget(), new ModelConfigTarget(), new AdapterConfigTarget(),
        new TokenizerJsonTarget(), new VocabTxtTarget(), new TokenizerConfigTarget(),
        new TokenizerConfigTarget("special-tokens-map", "special_tokens_map.json"), new TokenizerConfigTarget("generation-config", "generation_config.json"),
        new InputsJsonTarget(),
    ];

    /// <summary>The target of that name.</summary>
    /// <exception cref="ArgumentException">No target has that name; the message lists them.</exception>
    public static FuzzTarget Get(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"No fuzz target '{name}' (targets: {string.Join(", ", All.Select(t => t.Name))}).", nameof(name));
}
