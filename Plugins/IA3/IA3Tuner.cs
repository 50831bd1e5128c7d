using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.IA3;

/// <summary>The (IA)³ method (Liu et al., 2022), as in Hugging Face PEFT.</summary>
public sealed class IA3Tuner() : Tuner<IA3Config>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "IA3";

    /// <inheritdoc />
    public override IA3Config ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new IA3Model(model, context, this);
}
