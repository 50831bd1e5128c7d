using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.FourierFt;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(FourierFtTuner.PeftTypeName, typeof(FourierFtTuner))]
