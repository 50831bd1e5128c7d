using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.PromptTuning;

/// <summary>Prompt tuning (Lester et al., 2021), as in Hugging Face PEFT.</summary>
public sealed class PromptTuningTuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "PROMPT_TUNING";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new PromptTuningConfig(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) =>
        new PromptLearningModel(model, context, PeftTypeName, json => new PromptTuningConfig(json));
}

/// <summary>Prefix tuning (Li and Liang, 2021), as in Hugging Face PEFT.</summary>
public sealed class PrefixTuningTuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "PREFIX_TUNING";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new PrefixTuningConfig(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) =>
        new PromptLearningModel(model, context, PeftTypeName, json => new PrefixTuningConfig(json));
}

/// <summary>P-tuning (Liu et al., 2021), as in Hugging Face PEFT (<c>PromptEncoder</c>).</summary>
public sealed class PTuningTuner : ITuner
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "P_TUNING";

    /// <inheritdoc />
    public string PeftType => PeftTypeName;

    /// <inheritdoc />
    public TunerConfig ParseConfig(JsonObject json) => new PromptEncoderConfig(json);

    /// <inheritdoc />
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) =>
        new PromptLearningModel(model, context, PeftTypeName, json => new PromptEncoderConfig(json));
}
