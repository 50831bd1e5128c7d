namespace PeftHost.Engine.Plugins;

/// <summary>A plugin's manifest, read from its assembly's metadata before anything is loaded.</summary>
/// <param name="Id">The plugin id (e.g. "lora").</param>
/// <param name="Version">The plugin's informational version (else its assembly version).</param>
/// <param name="AssemblyVersion">The assembly version.</param>
/// <param name="ContractVersion">The Abstractions contract version the plugin was compiled against.</param>
/// <param name="Tuners">The tuners it exports: peft_type and the tuner's full type name.</param>
/// <param name="AssemblyPath">The absolute path of the plugin's main assembly.</param>
public sealed record PluginManifest(
    string Id,
    string Version,
    Version AssemblyVersion,
    string ContractVersion,
    IReadOnlyList<(string PeftType, string TypeName)> Tuners,
    string AssemblyPath)
{
    /// <summary>The peft_type strings served.</summary>
    public IReadOnlyList<string> Methods => Tuners.Select(t => t.PeftType).ToList();
}
