using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Plugins;

namespace PeftHost.Engine.Peft;

/// <summary>One tuner attached to a model: the plugin that serves it, its tuner model, and the
/// surgeon the host gave it (the host keeps it, so it can always restore the base model).</summary>
internal sealed record TunerSlot(string PeftType, PluginAssembly Plugin, ITunerModel Model, ModelSurgeon Surgeon);
