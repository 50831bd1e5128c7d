using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Vera;

/// <summary>VeRA, vector-based random matrix adaptation (Kopiczko et al., 2024), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class VeraTuner() : Tuner<VeraConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "VERA";

    /// <inheritdoc />
    public override VeraConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new VeraModel(model, context, this);
}
