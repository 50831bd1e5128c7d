namespace PeftHost.Engine.Plugins;

/// <summary>The outcome of one plugin reload.</summary>
/// <param name="PluginId">The plugin id (or folder name).</param>
/// <param name="Succeeded">Whether the new version now serves.</param>
/// <param name="OldVersion">The version that served before, or null when the plugin is new.</param>
/// <param name="NewVersion">The version that serves now (the old one after a rollback), or null.</param>
/// <param name="Elapsed">Load new, snapshot, detach, unload, apply, restore: until the new version serves.</param>
/// <param name="Error">Why the reload failed and what keeps serving, or null.</param>
public sealed record ReloadResult(string PluginId, bool Succeeded, string? OldVersion, string? NewVersion, TimeSpan Elapsed, string? Error);
