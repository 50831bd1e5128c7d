using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// The usual shape of an <see cref="ITuner"/>: the <c>peft_type</c> given once, the config parsed in one
/// place (<see cref="ParseConfig"/>, which the tuner model reuses: pass the tuner to
/// <see cref="LayerTunerModel{TConfig, TLayer}"/>'s constructor), and the model created by <see cref="Attach"/>.
/// </summary>
/// <typeparam name="TConfig">The tuner's config.</typeparam>
/// <param name="peftType">The <c>peft_type</c> served, as declared in the plugin's <see cref="Plugins.PeftTunerAttribute"/>.</param>
public abstract class Tuner<TConfig>(string peftType) : ITuner where TConfig : TunerConfig
{
    /// <inheritdoc />
    public string PeftType { get; } = peftType;

    /// <summary>Parses and validates an <c>adapter_config.json</c> object, keeping unknown fields.</summary>
    /// <exception cref="TunerConfigException">A field is missing, of the wrong type or out of range.</exception>
    public abstract TConfig ParseConfig(JsonObject json);

    TunerConfig ITuner.ParseConfig(JsonObject json) => ParseConfig(json);

    /// <inheritdoc />
    public abstract ITunerModel Attach(ModelSurgeon model, TunerContext context);
}
