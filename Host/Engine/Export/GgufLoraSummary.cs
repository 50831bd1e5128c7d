using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Export;

/// <summary>What a GGUF-LoRA export wrote.</summary>
/// <param name="Name">general.name.</param>
/// <param name="Quant">The requested tensor type.</param>
/// <param name="Alpha">adapter.lora.alpha.</param>
/// <param name="Weights">Base tensors adapted (each with a .lora_a and a .lora_b).</param>
/// <param name="Ranks">The distinct ranks of the pairs.</param>
public sealed record GgufLoraSummary(string Name, GgmlType Quant, float Alpha, int Weights, IReadOnlyList<int> Ranks);
