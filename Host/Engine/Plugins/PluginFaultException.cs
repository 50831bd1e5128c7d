namespace PeftHost.Engine.Plugins;

/// <summary>
/// A plugin threw during an operation (apply, forward, export, ...). The host and the model stay
/// usable; the message names the plugin, its version and the operation.
/// </summary>
public sealed class PluginFaultException(string pluginId, string pluginVersion, string operation, Exception inner)
    : Exception($"Plugin '{pluginId}' {pluginVersion} failed during {operation}: {inner.GetType().Name}: {inner.Message}", inner)
{
    /// <summary>The plugin's id.</summary>
    public string PluginId { get; } = pluginId;

    /// <summary>The operation that failed (e.g. "apply", "forward", "export").</summary>
    public string Operation { get; } = operation;
}
