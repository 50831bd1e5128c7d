namespace PeftHost.Engine.Plugins;

/// <summary>What became of one plugin file found in the plugins folder.</summary>
public enum PluginStatus
{
    /// <summary>Loaded; its tuners are registered.</summary>
    Loaded,
    /// <summary>Not loaded: incompatible, broken, missing a dependency, or in conflict with another plugin.</summary>
    Failed,
    /// <summary>Not loaded: the trust list is on and the file's hash is not in it.</summary>
    Refused,
}
