using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.BitFit;

/// <summary>
/// BitFit (Ben Zaken et al., 2022): train only the model's bias terms. PEFT has no such type; <c>BITFIT</c> is
/// PeftHost's own format, in PEFT's conventions (docs/methods/bitfit.md).
/// </summary>
public sealed class BitFitTuner() : Tuner<BitFitConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "BITFIT";

    /// <inheritdoc />
    public override BitFitConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new BitFitModel(model, context, this);
}
