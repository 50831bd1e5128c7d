using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftPlugin("contract-v2", "2.0")]
[assembly: PeftTuner("CONTRACT_V2", typeof(ContractV2.ContractV2Tuner))]

namespace ContractV2;

public sealed class ContractV2Tuner : ITuner
{
    // Must never run: the host refuses the plugin from its metadata.
    static ContractV2Tuner() => throw new InvalidOperationException("contract-v2 fixture code ran");

    public string PeftType => "CONTRACT_V2";
    public TunerConfig ParseConfig(JsonObject json) => throw new TunerConfigException("fixture");
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new InvalidOperationException("fixture");
}
