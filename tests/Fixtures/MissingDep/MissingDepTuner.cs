using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftTuner("MISSING_DEP", typeof(MissingDep.MissingDepTuner))]

namespace MissingDep;

public sealed class MissingDepTuner : ITuner
{
    public string PeftType => FixtureDependency.Helper.PeftType;
    public TunerConfig ParseConfig(JsonObject json) => throw new TunerConfigException("fixture");
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new InvalidOperationException("fixture");
}
