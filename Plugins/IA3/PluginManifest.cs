using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.IA3;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(IA3Tuner.PeftTypeName, typeof(IA3Tuner))]
