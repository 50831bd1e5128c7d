using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Loha;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(LoHaTuner.PeftTypeName, typeof(LoHaTuner))]
