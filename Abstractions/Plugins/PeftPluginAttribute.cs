namespace PeftHost.Abstractions.Plugins;

/// <summary>
/// Marks an assembly as a PeftHost plugin. The host reads it from the assembly's metadata before
/// loading anything, so an incompatible plugin is refused without running its code.
/// </summary>
/// <remarks>
/// Leave <paramref name="contractVersion"/> at its default: the compiler bakes the value of
/// <see cref="PeftContract.Version"/> from the Abstractions you compile against into your assembly,
/// which is exactly the version the host must check.
/// </remarks>
/// <param name="id">The plugin's id: lowercase, stable across versions (e.g. "lora"); also its folder name.</param>
/// <param name="contractVersion">The contract version the plugin was compiled against.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false)]
public sealed class PeftPluginAttribute(string id, string contractVersion = PeftContract.Version) : Attribute
{
    /// <summary>The plugin's id.</summary>
    public string Id { get; } = id;

    /// <summary>The contract version the plugin was compiled against.</summary>
    public string ContractVersion { get; } = contractVersion;
}
