using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Oft;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(OftTuner.PeftTypeName, typeof(OftTuner))]
