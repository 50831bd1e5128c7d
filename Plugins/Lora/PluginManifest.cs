using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Lora;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(LoraTuner.PeftTypeName, typeof(LoraTuner))]
