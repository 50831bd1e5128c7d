using PeftHost.Formats.Gguf;

namespace PeftHost.Engine.Export;

/// <summary>What an export wrote.</summary>
/// <param name="Name">general.name.</param>
/// <param name="Quant">The requested weight type.</param>
/// <param name="Layers">Decoder layers.</param>
/// <param name="MergedAdapters">Adapters merged into the weights.</param>
public sealed record GgufExportSummary(string Name, GgmlType Quant, int Layers, int MergedAdapters);
