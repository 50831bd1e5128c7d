using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace Hostile;

/// <summary>target_modules (module names), init_scale, and what goes wrong on purpose: export ("shape", "dtype") and forward ("nan").</summary>
public sealed class HostileConfig : TunerConfig
{
    public HostileConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private HostileConfig(ConfigFields f) : base("HOSTILE", f)
    {
        Targets = f.GetStringList("target_modules") ?? [];
        InitScale = f.GetDouble("init_scale", 1.5);
        Export = f.GetString("export", "ok")!;
        Forward = f.GetString("forward", "ok")!;
        UnknownFields = f.Remaining();
    }

    public IReadOnlyList<string> Targets { get; }
    public double InitScale { get; }
    public string Export { get; }
    public string Forward { get; }

    protected override void WriteFields(JsonObject json)
    {
        json["target_modules"] = new JsonArray([.. Targets.Select(t => JsonValue.Create(t))]);
        json["init_scale"] = InitScale;
        json["export"] = Export;
        json["forward"] = Forward;
    }
}
