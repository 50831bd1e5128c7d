using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftTuner("HOSTILE", typeof(Hostile.HostileTuner))]

namespace Hostile;

public sealed class HostileTuner : ITuner
{
    public string PeftType => "HOSTILE";

    public TunerConfig ParseConfig(JsonObject json)
    {
        Fault.At("ParseConfig");
        return new HostileConfig(json);
    }

    public ITunerModel Attach(ModelSurgeon model, TunerContext context)
    {
        Fault.At("Attach");
        return new HostileModel(model);
    }
}
