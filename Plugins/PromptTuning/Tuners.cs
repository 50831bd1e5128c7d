using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.PromptTuning;

/// <summary>Prompt tuning (Lester et al., 2021), as in Hugging Face PEFT.</summary>
public sealed class PromptTuningTuner() : Tuner<PromptTuningConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "PROMPT_TUNING";

    /// <inheritdoc />
    public override PromptTuningConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new PromptLearningModel(model, context, PeftTypeName, ParseConfig);
}

/// <summary>Prefix tuning (Li and Liang, 2021), as in Hugging Face PEFT.</summary>
public sealed class PrefixTuningTuner() : Tuner<PrefixTuningConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "PREFIX_TUNING";

    /// <inheritdoc />
    public override PrefixTuningConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new PromptLearningModel(model, context, PeftTypeName, ParseConfig);
}

/// <summary>P-tuning (Liu et al., 2021), as in Hugging Face PEFT (<c>PromptEncoder</c>).</summary>
public sealed class PTuningTuner() : Tuner<PromptEncoderConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "P_TUNING";

    /// <inheritdoc />
    public override PromptEncoderConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new PromptLearningModel(model, context, PeftTypeName, ParseConfig);
}
