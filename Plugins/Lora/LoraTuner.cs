using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Lora;

/// <summary>The LoRA method (Hu et al., 2021), as in Hugging Face PEFT.</summary>
public sealed class LoraTuner() : Tuner<LoraConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "LORA";

    /// <inheritdoc />
    public override LoraConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new LoraModel(model, context, this);
}
