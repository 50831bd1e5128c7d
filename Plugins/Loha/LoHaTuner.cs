using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace PeftHost.Plugins.Loha;

/// <summary>LoHa, the low-rank Hadamard product (FedPara, Hyeon-Woo et al., 2022, as in LyCORIS), as in Hugging Face PEFT 0.13.2.</summary>
public sealed class LoHaTuner() : Tuner<LoHaConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public const string PeftTypeName = "LOHA";

    /// <inheritdoc />
    public override LoHaConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new LoHaModel(model, context, this);
}
