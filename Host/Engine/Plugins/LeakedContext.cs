namespace PeftHost.Engine.Plugins;

/// <summary>
/// An unloaded plugin version whose load context is still alive after full garbage collections: code outside
/// it holds a reference into it (a handler on a static event, a GC handle, a thread, a timer, a cached type),
/// so its assemblies and memory stay until the process ends.
/// </summary>
/// <param name="PluginId">The plugin's id.</param>
/// <param name="Version">The version that was unloaded.</param>
/// <param name="AssemblyPath">The plugin assembly it was loaded from.</param>
public sealed record LeakedContext(string PluginId, string Version, string AssemblyPath);
