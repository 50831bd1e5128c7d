using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

[assembly: PeftTuner("FAULTY", typeof(Faulty.FaultyTuner))]

namespace Faulty;

public sealed class FaultyConfig : TargetedTunerConfig
{
    public FaultyConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private FaultyConfig(ConfigFields f) : base("FAULTY", f)
    {
        InitScale = f.GetDouble("init_scale", 1.0);
        FailOn = f.GetString("fail_on", "none")!;
        Note = f.GetString("note");
        UnknownFields = f.Remaining();
    }

    public double InitScale { get; }
    public string FailOn { get; }
    public string? Note { get; }

    protected override void WriteTunerFields(JsonObject json)
    {
        json["init_scale"] = InitScale;
        json["fail_on"] = FailOn;
        json["note"] = Note;
    }
}

/// <summary>y = base(x) * scale.</summary>
public sealed class ScaleLayer : TunerLayer
{
    private readonly AdapterParameterDict scale = new();
    private readonly Dictionary<string, bool> _failForward = new();

    public ScaleLayer(nn.Module<Tensor, Tensor> baseLayer) : base(nameof(ScaleLayer), baseLayer) => register_module("scale", scale);

    public override IReadOnlyCollection<string> Adapters => scale.Keys;

    public void Add(string adapter, double init, bool failForward)
    {
        scale.Add(adapter, new Parameter(torch.full(1, init)));
        _failForward[adapter] = failForward;
    }

    public override void DeleteAdapter(string adapter)
    {
        scale.Remove(adapter);
        _failForward.Remove(adapter);
    }

    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> active)
    {
        Tensor y = BaseLayer.forward(input);
        foreach (string a in active)
        {
            if (_failForward[a]) throw new InvalidOperationException("fixture forward failure");
            y = y * scale[a];
        }
        return y;
    }
}

public sealed class FaultyModel(ModelSurgeon model, TunerContext context) : LayerTunerModel<FaultyConfig, ScaleLayer>(model, context)
{
    protected override FaultyConfig ParseConfig(JsonObject json) => new(json);
    protected override bool Supports(nn.Module module) => module is Linear;
    protected override ScaleLayer CreateLayer(string path, nn.Module<Tensor, Tensor> baseModule, FaultyConfig config) => new(baseModule);

    protected override void AddAdapterToLayer(ScaleLayer layer, string path, string adapter, FaultyConfig config)
    {
        // Fails after the first layer was injected, to check that nothing is left half-applied.
        if (config.FailOn == "apply" && Layers.Count > 1) throw new InvalidOperationException("fixture apply failure");
        layer.Add(adapter, config.InitScale, config.FailOn == "forward");
    }

    // Called during export only: the place for an export-time fault.
    protected override bool ExportsBaseLayer(string path, FaultyConfig config) =>
        config.FailOn == "export" ? throw new InvalidOperationException("fixture export failure") : false;
}

public sealed class FaultyTuner : ITuner
{
    public string PeftType => "FAULTY";
    public TunerConfig ParseConfig(JsonObject json) => new FaultyConfig(json);
    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => new FaultyModel(model, context);
}
