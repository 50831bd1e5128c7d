using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A PEFT method (LoRA, IA3, ...): the entry point a plugin exports through
/// <see cref="Plugins.PeftTunerAttribute"/>. Stateless: everything about one model lives in the
/// <see cref="ITunerModel"/> it attaches.
/// </summary>
/// <remarks>A tuner's life: bind the config, attach to a model, add adapters (select targets and
/// inject), run, merge where possible, export state, detach. See shared/design/architecture.md.</remarks>
public interface ITuner
{
    /// <summary>The <c>peft_type</c> served, e.g. "LORA"; equal to the one the plugin declares.</summary>
    string PeftType { get; }

    /// <summary>Parses and validates an <c>adapter_config.json</c> object, keeping unknown fields.</summary>
    /// <exception cref="TunerConfigException">A field is missing, of the wrong type or out of range.</exception>
    TunerConfig ParseConfig(JsonObject json);

    /// <summary>Starts serving one model. Nothing is injected until an adapter is added.</summary>
    ITunerModel Attach(ModelSurgeon model, TunerContext context);
}
