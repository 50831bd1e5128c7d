using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.FourierFt;

/// <summary>FourierFT, parameter-efficient fine-tuning with the discrete Fourier transform (Gao et al., 2024), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class FourierFtTuner() : Tuner<FourierFtConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "FOURIERFT";

    /// <inheritdoc />
    public override FourierFtConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new FourierFtModel(model, context, this);
}
