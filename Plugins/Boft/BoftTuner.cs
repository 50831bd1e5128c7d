using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Boft;

/// <summary>Butterfly orthogonal fine-tuning (BOFT, Liu et al., 2024), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class BoftTuner() : Tuner<BoftConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "BOFT";

    /// <inheritdoc />
    public override BoftConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new BoftModel(model, context, this);
}
