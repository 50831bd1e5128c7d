using PeftHost.Abstractions.Plugins;
using ScaleShift;

[assembly: PeftTuner(SsfTuner.PeftTypeName, typeof(SsfTuner))]
