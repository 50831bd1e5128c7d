using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Oft;

/// <summary>
/// Orthogonal fine-tuning (Qiu et al., 2023) in the design of Hugging Face PEFT 0.13.2: <c>r</c> Cayley
/// blocks rotating a layer's output. PEFT 0.14 replaced it by a different OFT, whose files are refused.
/// </summary>
public sealed class OftTuner() : Tuner<OftConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "OFT";

    /// <inheritdoc />
    public override OftConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new OftModel(model, context, this);
}
