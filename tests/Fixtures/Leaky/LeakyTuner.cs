using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Plugins;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;

[assembly: PeftTuner("LEAKY_EVENT", typeof(Leaky.EventLeakTuner))]
[assembly: PeftTuner("LEAKY_HANDLE", typeof(Leaky.HandleLeakTuner))]

namespace Leaky;

/// <summary>Subscribes an instance method to AppDomain.ProcessExit and never unsubscribes: the host's AppDomain holds the plugin.</summary>
public sealed class EventLeakTuner : ITuner
{
    public EventLeakTuner() => AppDomain.CurrentDomain.ProcessExit += OnExit;

    public string PeftType => "LEAKY_EVENT";

    public TunerConfig ParseConfig(JsonObject json) => throw new TunerConfigException("the leaky fixture takes no adapters");

    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new NotSupportedException("the leaky fixture takes no adapters");

    private void OnExit(object? sender, EventArgs e) => GC.KeepAlive(this);
}

/// <summary>Allocates a strong GC handle to itself and never frees it.</summary>
public sealed class HandleLeakTuner : ITuner
{
    private static readonly List<GCHandle> Handles = [];

    public HandleLeakTuner() => Handles.Add(GCHandle.Alloc(this));

    public string PeftType => "LEAKY_HANDLE";

    public TunerConfig ParseConfig(JsonObject json) => throw new TunerConfigException("the leaky fixture takes no adapters");

    public ITunerModel Attach(ModelSurgeon model, TunerContext context) => throw new NotSupportedException("the leaky fixture takes no adapters");
}
