using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.IA3;

/// <summary>The (IA)³ method (Liu et al., 2022), as in Hugging Face PEFT.</summary>
public sealed class IA3Tuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "IA3";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new IA3Config(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => new IA3Model(model, context);
}
