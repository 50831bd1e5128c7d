using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Bottleneck;

/// <summary>
/// Bottleneck adapters: serial (Houlsby et al., 2019) and parallel (He et al., 2022). PEFT has no such type;
/// <c>BOTTLENECK</c> is PeftHost's own format, in PEFT's conventions (docs/methods/bottleneck.md).
/// </summary>
public sealed class BottleneckTuner() : Tuner<BottleneckConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "BOTTLENECK";

    /// <inheritdoc />
    public override BottleneckConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new BottleneckModel(model, context, this);
}
