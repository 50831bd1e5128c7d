namespace PeftHost.Engine.Plugins;

/// <summary>
/// What runs a loaded plugin's code and must be handed to a new version on reload (a PEFT model): the
/// catalog knows its users only through this, so the plugins room depends on no model type.
/// </summary>
public interface IPluginUser
{
    /// <summary>Whether this user holds state served by <paramref name="plugin"/>.</summary>
    bool Uses(PluginAssembly plugin);

    /// <summary>
    /// Hands this user's state from <paramref name="oldPlugin"/> to <paramref name="newPlugin"/> and holds it
    /// (no new work starts) until the returned swap is committed or rolled back. On failure here the old
    /// version is restored before the exception leaves.
    /// </summary>
    TunerSwap BeginTunerSwap(PluginAssembly oldPlugin, PluginAssembly newPlugin);
}
