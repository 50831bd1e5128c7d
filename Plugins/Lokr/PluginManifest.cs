using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Lokr;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(LoKrTuner.PeftTypeName, typeof(LoKrTuner))]
