using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Lokr;

/// <summary>LoKr, the low-rank Kronecker product (LyCORIS, Yeh et al., 2023), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class LoKrTuner() : Tuner<LoKrConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "LOKR";

    /// <inheritdoc />
    public override LoKrConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new LoKrModel(model, context, this);
}
