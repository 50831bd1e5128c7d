using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace OutputScale;

/// <summary>A made-up method for the tests: scale a module's output by a learned vector.</summary>
public sealed class OutputScaleTuner() : Tuner<OutputScaleConfig>(PeftTypeName)
{
    public const string PeftTypeName = "OUTPUT_SCALE";

    public override OutputScaleConfig ParseConfig(JsonObject json) => new(json);

    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new OutputScaleModel(model, context, this);
}
