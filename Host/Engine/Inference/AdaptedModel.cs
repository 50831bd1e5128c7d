using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Models;
using PeftHost.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// A model folder loaded with its PEFT adapters (all active), as the commands use it: the base model,
/// and when adapters are given the plugin catalog and <see cref="PeftModel"/> that serve them.
/// </summary>
public sealed class AdaptedModel : IDisposable
{
    private readonly PluginCatalog? _catalog;

    private AdaptedModel(ModelConfig config, nn.Module model, PluginCatalog? catalog, PeftModel? peft)
    {
        Config = config;
        Model = model;
        _catalog = catalog;
        Peft = peft;
    }

    /// <summary>The model's config.</summary>
    public ModelConfig Config { get; }

    /// <summary>The model (its modules wrapped by the adapters' layers while <see cref="Peft"/> holds them).</summary>
    public nn.Module Model { get; }

    /// <summary>The PEFT model over <see cref="Model"/>, or null without adapters.</summary>
    public PeftModel? Peft { get; }

    /// <summary>
    /// Loads <paramref name="modelFolder"/> in <paramref name="dtype"/> on <paramref name="device"/> and every
    /// adapter through the plugins in <paramref name="pluginsFolder"/>; all adapters are active. With
    /// <paramref name="quantization"/> the base's linear layers are quantized as they load (QLoRA's base; the
    /// adapters wrap the quantized layers). With <paramref name="dequantize"/> a folder saved quantized loads in
    /// full precision instead (<see cref="ModelFactory.LoadDequantized"/>), so the adapters wrap float layers; a float
    /// folder with <paramref name="quantization"/> then loads quantized and decoded again (a QLoRA base, in float).
    /// </summary>
    public static AdaptedModel Load(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string pluginsFolder, ScalarType dtype, Device device,
        BitsAndBytesConfig? quantization = null, bool dequantize = false)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        (ModelConfig config, nn.Module model) = dequantize ? ModelFactory.LoadDequantized(modelFolder, dtype, device, quantization) : ModelFactory.Load(modelFolder, dtype, device, quantization);
        if (adapters.Count == 0) return new AdaptedModel(config, model, null, null);
        PluginCatalog? catalog = null;
        PeftModel? peft = null;
        try
        {
            catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
            catalog.Scan();
            peft = new PeftModel(model, catalog);
            foreach (AdapterSpec a in adapters) peft.LoadAdapter(a.Folder, a.Name);
            peft.SetActiveAdapters([.. adapters.Select(a => a.Name)]);
            return new AdaptedModel(config, model, catalog, peft);
        }
        catch
        {
            peft?.Dispose();
            catalog?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>Merges every active adapter into the base weights (nothing to do without adapters).</summary>
    public void MergeActiveAdapters() => Peft?.Merge();

    /// <summary>Runs code that calls the model (under the PEFT model's lock when there are adapters).</summary>
    public T Run<T>(Func<T> forward) => Peft is null ? forward() : Peft.Run(forward);

    /// <summary>Removes the adapters, closes the plugins and frees the model.</summary>
    public void Dispose()
    {
        Peft?.Dispose();
        _catalog?.Dispose();
        Model.Dispose();
    }
}
