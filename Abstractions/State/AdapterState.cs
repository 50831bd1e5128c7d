using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.State;

/// <summary>
/// One adapter as plain data: what a tuner exports and imports, so that it survives a save, a
/// hotswap and a plugin reload alike. No plugin type appears here, so the state outlives the
/// plugin that made it.
/// </summary>
/// <param name="Name">The adapter's name (e.g. "default").</param>
/// <param name="Config">The adapter's <c>adapter_config.json</c> object.</param>
/// <param name="Tensors">
/// The adapter's tensors by PEFT's key names relative to the model, with the adapter name removed
/// (e.g. <c>layers.0.self_attn.q_proj.lora_A.weight</c>). Owned by the state: CPU copies detached
/// from the tuner's modules.
/// </param>
/// <param name="PluginState">Unused since contract 1.1 (see <see cref="PluginState"/>); pass nothing.</param>
public sealed record AdapterState(string Name, JsonObject Config, IReadOnlyDictionary<string, Tensor> Tensors, byte[]? PluginState = null) : IDisposable
{
    /// <summary>Opaque tuner bytes of contract 1.0, which nothing used: the host neither saves nor hands them on.</summary>
    [Obsolete(ObsoleteMessages.PluginState)]
    public byte[]? PluginState { get; init; } = PluginState;

    /// <summary>
    /// Tensors that belong to the tuner model rather than to any layer (contract 1.1), e.g. VeRA's
    /// <c>vera_A</c> / <c>vera_B</c>, shared by every layer it adapts. Keys are relative to the tuner model
    /// (PEFT's <c>PeftModel.base_model</c>), the adapter name removed: PEFT's <c>base_model.vera_A</c> is
    /// <c>vera_A</c> here, and an adapter folder keeps them under <c>base_model.</c> where the
    /// <see cref="Tensors"/> go under <c>base_model.model.</c>. Empty unless a tuner exports some. Owned by
    /// the state, as <see cref="Tensors"/>.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> ModelTensors { get; init; } = new Dictionary<string, Tensor>(StringComparer.Ordinal);

    /// <summary>The adapter's <c>peft_type</c>, read from its config.</summary>
    public string PeftType => Config["peft_type"]?.GetValue<string>() ?? throw new InvalidOperationException($"Adapter '{Name}' has no peft_type in its config.");

    /// <summary>Disposes the tensors (<see cref="Tensors"/> and <see cref="ModelTensors"/>).</summary>
    public void Dispose()
    {
        foreach (Tensor t in Tensors.Values) t.Dispose();
        foreach (Tensor t in ModelTensors.Values) t.Dispose();
    }
}
