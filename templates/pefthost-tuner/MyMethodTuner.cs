using System.Text.Json.Nodes;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

namespace MyMethod;

/// <summary>The method's entry point: its peft_type, how a config is parsed, how it attaches to a model. Stateless.</summary>
public sealed class MyMethodTuner() : Tuner<MyMethodConfig>(PeftTypeName)
{
    /// <summary>The <c>peft_type</c> of this method's <c>adapter_config.json</c>.</summary>
    public const string PeftTypeName = "MYMETHOD";

    /// <inheritdoc />
    public override MyMethodConfig ParseConfig(JsonObject json) => new(json);

    /// <inheritdoc />
    public override ITunerModel Attach(ModelSurgeon model, TunerContext context) => new MyMethodModel(model, context, this);
}
