namespace PeftHost.Engine.Plugins;

/// <summary>A plugin could not be loaded; the message names the plugin file and the reason.</summary>
public sealed class PluginLoadException(string message, Exception? inner = null) : Exception(message, inner);
