using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.AdaLora;

/// <summary>The AdaLoRA method (Zhang et al., 2023), as in Hugging Face PEFT.</summary>
public sealed class AdaLoraTuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "ADALORA";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new AdaLoraConfig(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => new AdaLoraModel(model, context);
}
