using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Inference.Batching;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using PeftHost.Serving.Metrics;
using PeftHost.Serving.Scheduling;
using PeftHost.Tokenizers;

namespace PeftHost.Serving;

/// <summary>
/// A model loaded for serving: its batch decoder (torch: continuous batching with an adapter per row; llama:
/// llama.cpp, one sequence at a time), the scheduler over it, and the names requests use: the base model's
/// (<see cref="BaseName"/>) and each adapter's. The OpenAI server and the <see cref="ChatClient.PeftHostChatClient"/>
/// both run on it.
/// </summary>
public sealed class ServedModel : IDisposable
{
    private readonly PluginCatalog? _ownedCatalog;
    private readonly PluginFolderWatcher? _watcher;
    private readonly Dictionary<string, string> _folders = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    private ServedModel(ServedModelOptions options, IBatchDecoder decoder, ITextTokenizer tokenizer, string baseName, PluginCatalog? catalog,
        PluginCatalog? ownedCatalog, PluginFolderWatcher? watcher, ServingMetrics metrics, ILogger logger)
    {
        Options = options;
        Tokenizer = tokenizer;
        BaseName = baseName;
        Catalog = catalog;
        _ownedCatalog = ownedCatalog;
        _watcher = watcher;
        Metrics = metrics;
        foreach (AdapterSpec a in options.Adapters) _folders[a.Name] = Path.GetFullPath(a.Folder);
        Scheduler = new GenerationScheduler(decoder, options.MaxQueue, metrics, logger);
    }

    /// <summary>What was loaded and how.</summary>
    public ServedModelOptions Options { get; }

    /// <summary>The base model's name in requests.</summary>
    public string BaseName { get; }

    /// <summary>The model folder's tokenizer (serving needs one).</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The scheduler that runs every request.</summary>
    public GenerationScheduler Scheduler { get; }

    /// <summary>The plugin catalog the torch backend's adapters come from (null on the llama backend); reloading one of its plugins reaches this model.</summary>
    public PluginCatalog? Catalog { get; }

    /// <summary>The server's metrics.</summary>
    public ServingMetrics Metrics { get; }

    /// <summary>The decoder's context: prompt (and virtual tokens) plus new tokens per request.</summary>
    public int ContextSize => Scheduler.Decoder.ContextSize;

    /// <summary>The adapters served now.</summary>
    public IReadOnlyList<string> Adapters => Scheduler.Adapters;

    /// <summary>
    /// Loads the model and its adapters. On the torch backend the adapters come through <paramref name="catalog"/>
    /// when given (an application's catalog, e.g. AddPeftHost's: its reloads reach the model), otherwise through a
    /// catalog of <see cref="ServedModelOptions.PluginsFolder"/> owned here (watched when <see cref="ServedModelOptions.HotReload"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range, the base name clashes with an adapter's, two adapters share a name, or the folder has no tokenizer.</exception>
    /// <exception cref="NotSupportedException">The backend cannot serve the model or an adapter.</exception>
    public static ServedModel Open(ServedModelOptions options, PluginCatalog? catalog = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxBatch < 1) throw new ArgumentException($"--max-batch must be at least 1, not {options.MaxBatch}.");
        if (options.MaxQueue < 1) throw new ArgumentException($"--max-queue must be at least 1, not {options.MaxQueue}.");
        if (options.Backend == InferenceBackendKind.Vulkan) throw new NotSupportedException("serving runs on --backend torch or llama (the vulkan backend decodes one request at a time without a scheduler yet).");
        string baseName = options.ServedModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.ModelFolder)));
        if (string.IsNullOrWhiteSpace(baseName)) throw new ArgumentException("The served model name is empty: give --served-model-name.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (AdapterSpec a in options.Adapters)
        {
            AdapterNames.EnsureValid(a.Name);
            if (a.Name == baseName)
                throw new ArgumentException($"adapter '{a.Name}' has the base model's served name '{baseName}': rename the adapter (--adapter NAME=DIR) or the base (--served-model-name).");
            if (!seen.Add(a.Name)) throw new ArgumentException($"Two adapters are named '{a.Name}': give each its own name (--adapter NAME=DIR).");
        }
        ILoggerFactory logs = loggerFactory ?? NullLoggerFactory.Instance;
        // The tokenizer first: a folder without one fails before any weights are read.
        ITextTokenizer tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder)
            ?? throw new ArgumentException($"{Path.GetFullPath(options.ModelFolder)} has no tokenizer (tokenizer.json or vocab.txt): serving turns text into ids with it.");
        var backendOptions = new InferenceBackendOptions
        {
            Kind = options.Backend,
            ModelFolder = options.ModelFolder,
            Adapters = options.Adapters,
            PluginsFolder = options.PluginsFolder,
            DType = options.DType,
            Device = options.Device,
            Threads = options.Threads,
            ContextSize = options.ContextSize,
            Quant = options.Quant,
            CacheDirectory = options.CacheDirectory,
        };
        PluginCatalog? owned = null;
        PluginFolderWatcher? watcher = null;
        IBatchDecoder? decoder = null;
        try
        {
            if (options.Backend == InferenceBackendKind.Torch)
            {
                if (catalog is null)
                {
                    owned = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = options.PluginsFolder, HotReload = options.HotReload }, logs);
                    owned.Scan();
                    catalog = owned;
                }
                else if (catalog.Plugins.Count == 0) catalog.Scan();
                decoder = TorchBatchDecoder.Open(backendOptions, options.MaxBatch, catalog);
                // The scheduler's thread decodes from now on: this thread's OpenMP team would only throttle libgomp.
                OpenMpPool.ReleaseCallingThread();
                if (owned is not null && options.HotReload)
                {
                    watcher = new PluginFolderWatcher(owned);
                    watcher.Start();
                }
            }
            else
            {
                catalog = null;
                decoder = LlamaBatchDecoder.Open(backendOptions);
            }
            return new ServedModel(options, decoder, tokenizer, baseName, catalog, owned, watcher, new ServingMetrics(), logs.CreateLogger<ServedModel>());
        }
        catch
        {
            decoder?.Dispose();
            watcher?.Dispose();
            owned?.Dispose();
            throw;
        }
    }

    /// <summary>The adapter a request's <c>model</c> names: null for the base model's name.</summary>
    /// <exception cref="KeyNotFoundException">No model of that name is served.</exception>
    public string? AdapterOf(string model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model == BaseName) return null;
        if (Adapters.Contains(model)) return model;
        throw new KeyNotFoundException($"The model '{model}' does not exist (served: {string.Join(", ", [BaseName, .. Adapters])}).");
    }

    /// <summary>The folder an adapter was loaded from (null when unknown).</summary>
    public string? FolderOf(string adapter)
    {
        lock (_gate) return _folders.GetValueOrDefault(adapter);
    }

    /// <summary>Loads an adapter under a new name, or with <paramref name="hotswap"/> replaces a loaded one once its running requests are done.</summary>
    /// <exception cref="ArgumentException">The name is the base model's, is invalid, or is taken (without <paramref name="hotswap"/>).</exception>
    public async Task LoadAdapterAsync(string name, string folder, bool hotswap)
    {
        AdapterNames.EnsureValid(name);
        if (name == BaseName) throw new ArgumentException($"'{name}' is the base model's served name; choose another adapter name.");
        bool exists = Adapters.Contains(name);
        if (exists && !hotswap) throw new ArgumentException($"The adapter '{name}' has already been loaded (to replace its weights, send \"hotswap\": true).");
        if (exists) await Scheduler.ReplaceAdapterAsync(name, folder).ConfigureAwait(false);
        else await Scheduler.LoadAdapterAsync(name, folder).ConfigureAwait(false);
        lock (_gate) _folders[name] = Path.GetFullPath(folder);
    }

    /// <summary>Unloads an adapter once its running requests are done.</summary>
    /// <exception cref="KeyNotFoundException">No adapter of that name.</exception>
    public async Task UnloadAdapterAsync(string name)
    {
        if (!Adapters.Contains(name)) throw new KeyNotFoundException($"The adapter '{name}' is not loaded (adapters: {string.Join(", ", Adapters)}).");
        await Scheduler.UnloadAdapterAsync(name).ConfigureAwait(false);
        lock (_gate) _folders.Remove(name);
    }

    /// <summary>Stops the scheduler (requests in flight end), frees the model and the catalog it owns.</summary>
    public void Dispose()
    {
        _watcher?.Dispose();
        Scheduler.Dispose();
        _ownedCatalog?.Dispose();
    }
}
