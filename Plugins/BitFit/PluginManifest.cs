using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.BitFit;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(BitFitTuner.PeftTypeName, typeof(BitFitTuner))]
