namespace PeftHost.Engine.Plugins;

/// <summary>One plugin file found in the plugins folder and what became of it (what `pefthost plugins` lists).</summary>
/// <param name="Id">The manifest id, or the folder name when no manifest could be read.</param>
/// <param name="Version">The plugin version, or null when unknown.</param>
/// <param name="Status">Loaded, failed or refused.</param>
/// <param name="Methods">The peft_type strings it declares (empty when unknown).</param>
/// <param name="Path">The absolute path of the plugin's main assembly (or its folder when none was found).</param>
/// <param name="Error">Why it is not loaded, or null.</param>
public sealed record PluginInfo(string Id, string? Version, PluginStatus Status, IReadOnlyList<string> Methods, string Path, string? Error);
