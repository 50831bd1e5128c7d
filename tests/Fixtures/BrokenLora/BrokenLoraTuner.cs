using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftTuner("LORA", typeof(BrokenLora.BrokenLoraTuner))]

namespace BrokenLora;

public sealed class BrokenLoraTuner : ITuner
{
    public string PeftType => "LORA";
    public TunerConfig ParseConfig(JsonObject json) => throw new InvalidOperationException("broken build: cannot read LoRA configs");
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new InvalidOperationException("broken build: attach fails");
}
