using PeftHost.Abstractions.Plugins;
using PeftHost.Plugins.PromptTuning;

// The plugin id comes from PluginId in the project file (build/Plugin.targets).
// One plugin, three prompt-learning methods sharing one tuner model.
[assembly: PeftTuner(PromptTuningTuner.PeftTypeName, typeof(PromptTuningTuner))]
[assembly: PeftTuner(PrefixTuningTuner.PeftTypeName, typeof(PrefixTuningTuner))]
[assembly: PeftTuner(PTuningTuner.PeftTypeName, typeof(PTuningTuner))]
