using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.Bottleneck;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
[assembly: PeftTuner(BottleneckTuner.PeftTypeName, typeof(BottleneckTuner))]
