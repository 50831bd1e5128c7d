using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Boft;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(BoftTuner.PeftTypeName, typeof(BoftTuner))]
