using OutputScale;
using PeftHost.Abstractions.Plugins;

[assembly: PeftTuner(OutputScaleTuner.PeftTypeName, typeof(OutputScaleTuner))]
