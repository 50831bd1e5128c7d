using MyMethod;
using PeftHost.Abstractions.Plugins;

// The peft_type this plugin serves; the host reads it from the metadata before loading the assembly.
[assembly: PeftTuner(MyMethodTuner.PeftTypeName, typeof(MyMethodTuner))]
