using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.AdaLora;

/// <summary>The AdaLoRA method (Zhang et al., 2023), as in Hugging Face PEFT.</summary>
public sealed class AdaLoraTuner() : Tuner<AdaLoraConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "ADALORA";

    /// <inheritdoc />
    public override AdaLoraConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new AdaLoraModel(model, context, this);
}
