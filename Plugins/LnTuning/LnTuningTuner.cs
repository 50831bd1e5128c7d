using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.LnTuning;

/// <summary>LN tuning (Zhao et al., 2023: train the normalisation layers), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class LnTuningTuner() : Tuner<LnTuningConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "LN_TUNING";

    /// <inheritdoc />
    public override LnTuningConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new LnTuningModel(model, context, this);
}
