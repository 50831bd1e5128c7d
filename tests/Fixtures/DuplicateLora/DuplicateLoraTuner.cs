using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftTuner("LORA", typeof(DuplicateLora.DuplicateLoraTuner))]

namespace DuplicateLora;

public sealed class DuplicateLoraTuner : ITuner
{
    public string PeftType => "LORA";
    public TunerConfig ParseConfig(JsonObject json) => throw new TunerConfigException("fixture");
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new InvalidOperationException("fixture");
}
