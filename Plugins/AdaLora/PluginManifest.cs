using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.AdaLora;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(AdaLoraTuner.PeftTypeName, typeof(AdaLoraTuner))]
