using PeftHost.Engine.Inference;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Config;
using static TorchSharp.torch;

namespace PeftHost.Engine.Export;

/// <summary>
/// A Llama-family base model loaded once (float32, CPU) with the plugins, on which adapters are loaded
/// one at a time to ask their methods what only they know (can this adapter be written as low-rank
/// pairs, can it merge): the GGUF exporters' questions. Each <see cref="Load"/> is a
/// <see cref="PeftModel"/> of its own, so adapters never meet; disposing it restores the base's modules.
/// </summary>
internal sealed class AdapterInspector : IDisposable
{
    private readonly nn.Module _base;
    private readonly PluginCatalog _catalog;

    private AdapterInspector(LlamaConfig llama, nn.Module model, PluginCatalog catalog)
    {
        Llama = llama;
        _base = model;
        _catalog = catalog;
    }

    /// <summary>Loads <paramref name="modelFolder"/> (after checking that GGUF export supports it) and scans <paramref name="pluginsFolder"/>.</summary>
    /// <exception cref="NotSupportedException">The model is not one the GGUF export handles.</exception>
    public static AdapterInspector Open(string modelFolder, string pluginsFolder)
    {
        LlamaConfig llama = LlamaGgufExporter.CheckSupported(ModelConfigReader.Read(modelFolder));
        (_, nn.Module model) = ModelFactory.Load(modelFolder);
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsFolder, HotReload = false });
        try
        {
            catalog.Scan();
            return new AdapterInspector(llama, model, catalog);
        }
        catch
        {
            catalog.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>The base model's config.</summary>
    public LlamaConfig Llama { get; }

    /// <summary>The base with <paramref name="adapter"/> loaded for inference (the caller disposes it).</summary>
    public PeftModel Load(AdapterSpec adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        var peft = new PeftModel(_base, _catalog);
        try
        {
            peft.LoadAdapter(adapter.Folder, adapter.Name);
            return peft;
        }
        catch
        {
            peft.Dispose();
            throw;
        }
    }

    /// <summary>Frees the model and the plugins.</summary>
    public void Dispose()
    {
        _catalog.Dispose();
        _base.Dispose();
    }
}
