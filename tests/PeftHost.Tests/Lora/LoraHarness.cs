using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using PeftHost.Abstractions.Surgery;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Lora;

/// <summary>The installed LoRA plugin attached straight to a model, as the host does, for formula-level tests.</summary>
internal static class LoraHarness
{
    private static readonly Lazy<PluginCatalog> Catalog = new(() =>
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = PluginDirs.Installed });
        catalog.Scan();
        return catalog;
    });

    public static ITuner Tuner => Catalog.Value.GetTuner("LORA");

    /// <summary>Freezes the base model (as PeftModel does) and attaches the LoRA tuner.</summary>
    public static ITunerModel Attach(nn.Module model)
    {
        foreach (var p in model.parameters()) p.requires_grad = false;
        return Tuner.Attach(new ModelSurgeon(model), new TunerContext(NullLogger.Instance));
    }

    /// <summary>Attaches and adds one adapter from a config.</summary>
    public static ITunerModel Apply(nn.Module model, JsonObject config, string adapter = "default")
    {
        ITunerModel tuner = Attach(model);
        tuner.AddAdapter(adapter, Tuner.ParseConfig(config));
        return tuner;
    }

    /// <summary>A LoRA config: the given fields over peft_type LORA.</summary>
    public static JsonObject Config(params (string Key, JsonNode? Value)[] fields)
    {
        var json = new JsonObject { ["peft_type"] = "LORA" };
        foreach ((string key, JsonNode? value) in fields) json[key] = value;
        return json;
    }

    public static JsonArray List(params string[] items) => new([.. items.Select(i => JsonValue.Create(i))]);

    /// <summary>The model's parameters by name (live tensors).</summary>
    public static Dictionary<string, Tensor> Params(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>A detached copy of a named parameter.</summary>
    public static Tensor Copy(nn.Module model, string name) => Params(model)[name].detach().clone();

    public static string[] Trainable(nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).Order(StringComparer.Ordinal).ToArray();

    public static double Diff(Tensor a, Tensor b) => Tensors.MaxAbsDiff(a, b);
}
