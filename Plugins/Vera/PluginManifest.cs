using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Vera;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(VeraTuner.PeftTypeName, typeof(VeraTuner))]
