using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Lora;

/// <summary>The LoRA method (Hu et al., 2021), as in Hugging Face PEFT.</summary>
public sealed class LoraTuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "LORA";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new LoraConfig(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => new LoraModel(model, context);
}
