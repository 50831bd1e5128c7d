using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace ScaleShift;

/// <summary>SSF, "Scaling and Shifting your Features" (Lian et al., NeurIPS 2022), as a PeftHost tuner.</summary>
public sealed class SsfTuner() : Tuner<SsfConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> of an SSF <c>adapter_config.json</c> (PEFT has no such method).</summary>
    public const string PeftTypeName = "SSF";

    /// <inheritdoc />
    public override SsfConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new SsfModel(model, context, this);
}
