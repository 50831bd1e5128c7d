using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.LnTuning;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(LnTuningTuner.PeftTypeName, typeof(LnTuningTuner))]
