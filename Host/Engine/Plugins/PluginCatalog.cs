using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PeftHost.Abstractions;
using PeftHost.Abstractions.Tuning;
using PeftHost.Engine.Runtime;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// The plugins folder, discovered and loaded: one sub-folder per plugin, each plugin in its own
/// collectible load context, a registry from peft_type to the tuner that serves it, and hot reload
/// of a plugin while the models using it stay in memory. A broken plugin never stops the others.
/// </summary>
public sealed class PluginCatalog : IDisposable
{
    private readonly object _gate = new();
    private readonly SemaphoreSlim _reloadGate = new(1, 1);
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal); // by plugin folder
    private readonly List<Retired> _retiredContexts = []; // unloaded versions whose contexts may still be alive
    private int _retiredCount;
    private readonly List<WeakReference<IPluginUser>> _users = [];
    private readonly PluginTrustList? _trust;
    private readonly ILogger _logger;

    /// <summary>A catalog over <paramref name="options"/>' plugins folder; call <see cref="Scan"/> to load.</summary>
    public PluginCatalog(PluginCatalogOptions options, ILoggerFactory? loggerFactory = null)
    {
        Options = options;
        LoggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = LoggerFactory.CreateLogger<PluginCatalog>();
        _trust = options.ResolveTrustList();
        PluginsDirectory = Path.GetFullPath(options.PluginsDirectory);
    }

    /// <summary>The absolute plugins folder.</summary>
    public string PluginsDirectory { get; }

    /// <summary>The settings.</summary>
    public PluginCatalogOptions Options { get; }

    /// <summary>The logger factory handed to tuners.</summary>
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>Raised after each reload attempt, successful or not.</summary>
    public event EventHandler<ReloadResult>? Reloaded;

    /// <summary>Every plugin file found and its status, ordered by folder.</summary>
    public IReadOnlyList<PluginInfo> Plugins
    {
        get { lock (_gate) return _entries.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value.Info).ToList(); }
    }

    /// <summary>The peft_type strings served now.</summary>
    public IReadOnlyList<string> PeftTypes
    {
        get { lock (_gate) return _entries.Values.Where(e => e.Loaded is not null).SelectMany(e => e.Loaded!.Tuners.Keys).Order(StringComparer.Ordinal).ToList(); }
    }

    /// <summary>
    /// Discovers and loads every plugin in the folder (each sub-folder is one plugin). Errors are
    /// recorded per plugin (see <see cref="Plugins"/>); only an unreadable folder throws.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The plugins folder does not exist.</exception>
    /// <exception cref="UnauthorizedAccessException">It cannot be read.</exception>
    public void Scan()
    {
        if (!Directory.Exists(PluginsDirectory))
            throw new DirectoryNotFoundException($"Plugins folder not found: {PluginsDirectory}");
        string[] folders = Directory.GetDirectories(PluginsDirectory);
        Array.Sort(folders, StringComparer.Ordinal);
        foreach (string folder in folders)
        {
            lock (_gate) { if (_entries.ContainsKey(folder)) continue; }
            Entry entry = LoadFolder(folder, replacing: null);
            lock (_gate) _entries[folder] = entry;
            Log(entry.Info);
        }
    }

    /// <summary>The tuner serving <paramref name="peftType"/>.</summary>
    /// <exception cref="KeyNotFoundException">No loaded plugin serves it; the message lists those that are served and failed plugins.</exception>
    public ITuner GetTuner(string peftType) => GetPlugin(peftType).Tuners[peftType];

    /// <summary>The loaded plugin serving <paramref name="peftType"/>.</summary>
    public PluginAssembly GetPlugin(string peftType)
    {
        lock (_gate)
        {
            foreach (Entry e in _entries.Values)
                if (e.Loaded is not null && e.Loaded.Tuners.ContainsKey(peftType)) return e.Loaded;
            string failed = string.Join("; ", _entries.Values.Where(e => e.Loaded is null && e.Info.Methods.Contains(peftType)).Select(e => $"{e.Info.Id}: {e.Info.Error}"));
            throw new KeyNotFoundException($"No plugin serves peft_type '{peftType}'. Served: {string.Join(", ", PeftTypes)}" +
                (failed.Length > 0 ? $". A plugin declaring it did not load: {failed}" : $". Plugins folder: {PluginsDirectory}"));
        }
    }

    /// <summary>
    /// Reloads the plugin in <paramref name="pluginFolder"/> (what the watcher calls): loads the new
    /// version beside the old, hands every live model's adapters from the old version to the new
    /// one, and unloads the old. On any failure the old version keeps serving and the result says why.
    /// A folder not seen before is loaded as a new plugin.
    /// </summary>
    public ReloadResult Reload(string pluginFolder)
    {
        string folder = Path.GetFullPath(pluginFolder).TrimEnd(Path.DirectorySeparatorChar);
        _reloadGate.Wait();
        var clock = Stopwatch.StartNew();
        try
        {
            ReloadResult result = ReloadLocked(folder, clock);
            if (result.Succeeded) _logger.LogInformation("Reloaded plugin {Id}: {Old} -> {New} in {Ms:F1} ms", result.PluginId, result.OldVersion ?? "(new)", result.NewVersion, result.Elapsed.TotalMilliseconds);
            else _logger.LogWarning("Reload of plugin {Id} failed; {Serving}. {Error}", result.PluginId, result.OldVersion is null ? "nothing was loaded" : $"version {result.OldVersion} keeps serving", result.Error);
            Reloaded?.Invoke(this, result);
            return result;
        }
        finally
        {
            _reloadGate.Release();
            // The reload moved the live layers' tensors on this thread (a file watcher's or a request's): its OpenMP
            // team would stay behind and slow the thread that decodes or trains (see OpenMpPool).
            OpenMpPool.ReleaseCallingThread();
        }
    }

    /// <summary>
    /// Forces full garbage collections and counts the load contexts of unloaded plugin versions
    /// that are still alive (a leak when it stays above zero; <see cref="LeakedContexts"/> names them).
    /// </summary>
    public int CountLeakedContexts() => LeakedContexts().Count;

    /// <summary>
    /// The unloaded plugin versions whose load contexts are still alive after full garbage collections (a bounded
    /// number of them: this never waits for a context that will not unload). Each is logged once as a warning.
    /// </summary>
    public IReadOnlyList<LeakedContext> LeakedContexts()
    {
        for (int i = 0; i < 10; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            lock (_gate) { if (_retiredContexts.All(r => !r.Context.IsAlive)) break; }
            Thread.Sleep(10);
        }
        List<Retired> alive;
        lock (_gate)
        {
            _retiredContexts.RemoveAll(r => !r.Context.IsAlive);
            alive = [.. _retiredContexts];
        }
        foreach (Retired r in alive.Where(r => !r.Reported))
        {
            r.Reported = true;
            _logger.LogWarning("Plugin {Id} {Version} ({Path}) was unloaded but its load context is still alive: code outside it holds a reference into it " +
                "(a static event handler, a GC handle, a thread or a timer); its memory stays until the process ends", r.Info.PluginId, r.Info.Version, r.Info.AssemblyPath);
        }
        return [.. alive.Select(r => r.Info)];
    }

    /// <summary>The number of plugin versions unloaded so far.</summary>
    public int RetiredCount { get { lock (_gate) return _retiredCount; } }

    /// <summary>Tells the catalog that <paramref name="user"/> runs its plugins' code: reloads hand its state over (held weakly).</summary>
    internal void Register(IPluginUser user)
    {
        lock (_gate)
        {
            _users.RemoveAll(w => !w.TryGetTarget(out _));
            _users.Add(new WeakReference<IPluginUser>(user));
        }
    }

    /// <summary>Forgets a user (it was disposed).</summary>
    internal void Unregister(IPluginUser user)
    {
        lock (_gate) _users.RemoveAll(w => !w.TryGetTarget(out IPluginUser? u) || ReferenceEquals(u, user));
    }

    /// <summary>Unloads every plugin. Models using them must be disposed first.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (Entry e in _entries.Values)
            {
                if (e.Loaded is null) continue;
                e.Loaded.Unload();
                AddRetired(e.Loaded);
            }
            _entries.Clear();
        }
    }

    private ReloadResult ReloadLocked(string folder, Stopwatch clock)
    {
        Entry? current;
        lock (_gate) _entries.TryGetValue(folder, out current);
        PluginAssembly? old = current?.Loaded;
        string id = current?.Info.Id ?? Path.GetFileName(folder);

        if (!Directory.Exists(folder))
        {
            if (old is not null && UsersOf(old).Count > 0)
                return new ReloadResult(id, false, old.Manifest.Version, old.Manifest.Version, clock.Elapsed, $"The folder {folder} was removed, but live adapters use the plugin: it stays loaded.");
            lock (_gate) _entries.Remove(folder);
            if (old is not null) Retire(old);
            return new ReloadResult(id, true, old?.Manifest.Version, null, clock.Elapsed, null);
        }

        Entry next = LoadFolder(folder, replacing: old);
        if (next.Loaded is null)
        {
            if (old is null) lock (_gate) _entries[folder] = next;
            return new ReloadResult(next.Info.Id, false, old?.Manifest.Version, old?.Manifest.Version, clock.Elapsed, next.Info.Error);
        }
        if (old is null)
        {
            lock (_gate) _entries[folder] = next;
            return new ReloadResult(next.Info.Id, true, null, next.Loaded.Manifest.Version, clock.Elapsed, null);
        }

        // Compiled before the handover, which holds the models' write lock (serving waits for it).
        (int compiled, int left) = PluginWarmup.CompileAhead(next.Loaded);
        _logger.LogDebug("Compiled {Compiled} methods of plugin {Id} {Version} ahead of the handover ({Left} left to their first call)", compiled, id, next.Loaded.Manifest.Version, left);
        // Hand every live user over, all or nothing.
        var swaps = new List<TunerSwap>();
        try
        {
            foreach (IPluginUser user in UsersOf(old)) swaps.Add(user.BeginTunerSwap(old, next.Loaded));
        }
        catch (Exception e)
        {
            foreach (TunerSwap swap in Enumerable.Reverse(swaps)) swap.Rollback();
            next.Loaded.Unload();
            AddRetired(next.Loaded);
            return new ReloadResult(id, false, old.Manifest.Version, old.Manifest.Version, clock.Elapsed,
                $"Handing the adapters to version {next.Loaded.Manifest.Version} failed, rolled back (version {old.Manifest.Version} keeps serving): {e.Message}");
        }
        lock (_gate) _entries[folder] = next;
        foreach (TunerSwap swap in swaps) swap.Commit();
        Retire(old);
        return new ReloadResult(id, true, old.Manifest.Version, next.Loaded.Manifest.Version, clock.Elapsed, null);
    }

    private void Retire(PluginAssembly plugin)
    {
        plugin.Unload();
        AddRetired(plugin);
    }

    // Contexts already collected are dropped from the list (only the count stays), so that it does not grow with every reload.
    private void AddRetired(PluginAssembly plugin)
    {
        lock (_gate)
        {
            _retiredContexts.RemoveAll(r => !r.Context.IsAlive);
            _retiredContexts.Add(new Retired(plugin));
            _retiredCount++;
        }
    }

    // Uses() takes the user's own lock: it is asked outside the catalog's, since a model holding its lock may be
    // waiting for the catalog's (adding an adapter looks its plugin up): asking inside would deadlock.
    private List<IPluginUser> UsersOf(PluginAssembly plugin)
    {
        List<IPluginUser> users;
        lock (_gate)
        {
            users = [];
            foreach (WeakReference<IPluginUser> w in _users)
                if (w.TryGetTarget(out IPluginUser? u)) users.Add(u);
        }
        return [.. users.Where(u => u.Uses(plugin))];
    }

    // Finds, checks and loads the plugin of one folder. Never throws: failures become the entry's status.
    private Entry LoadFolder(string folder, PluginAssembly? replacing)
    {
        string folderName = Path.GetFileName(folder);
        var manifests = new List<PluginManifest>();
        var errors = new List<(string Path, string Error)>();
        string[] dlls;
        try
        {
            dlls = Directory.GetFiles(folder, "*.dll");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Failed(folderName, folder, $"cannot read the plugin folder: {e.Message}");
        }
        Array.Sort(dlls, StringComparer.Ordinal);
        foreach (string dll in dlls)
        {
            try
            {
                if (PluginManifestReader.TryRead(dll) is { } m) manifests.Add(m);
            }
            catch (BadImageFormatException e) { errors.Add((dll, $"not a valid .NET assembly (bad image): {e.Message}")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { errors.Add((dll, $"cannot read the file: {e.Message}")); }
        }
        if (manifests.Count == 0)
        {
            (string path, string error) = errors.Count > 0 ? errors[0] : (folder, "no plugin assembly: no .dll in the folder carries [assembly: PeftPlugin]");
            return Failed(folderName, path, error);
        }
        if (manifests.Count > 1)
            return Failed(manifests[0].Id, manifests[0].AssemblyPath, $"more than one plugin assembly in one folder: {string.Join(", ", manifests.Select(m => Path.GetFileName(m.AssemblyPath)))}");

        PluginManifest manifest = manifests[0];
        PluginInfo Info(PluginStatus status, string? error) => new(manifest.Id, manifest.Version, status, manifest.Methods, manifest.AssemblyPath, error);

        if (CheckContract(manifest) is { } contractError) return new Entry(Info(PluginStatus.Failed, contractError), null);
        if (manifest.Tuners.Count == 0) return new Entry(Info(PluginStatus.Failed, "the plugin declares no tuner ([assembly: PeftTuner(...)])"), null);
        if (!string.Equals(manifest.Id, folderName, StringComparison.Ordinal))
            _logger.LogWarning("Plugin {Id} is in folder '{Folder}'; the convention is plugins/<id>/", manifest.Id, folderName);

        lock (_gate)
        {
            foreach ((string otherFolder, Entry other) in _entries)
            {
                if (otherFolder == folder || other.Loaded is null || ReferenceEquals(other.Loaded, replacing)) continue;
                if (other.Loaded.Manifest.Id == manifest.Id)
                    return new Entry(Info(PluginStatus.Failed, $"plugin id '{manifest.Id}' is already loaded from {other.Loaded.Manifest.AssemblyPath}"), null);
                foreach (string peftType in manifest.Methods)
                    if (other.Loaded.Tuners.ContainsKey(peftType))
                        return new Entry(Info(PluginStatus.Failed, $"peft_type '{peftType}' is already served by plugin '{other.Loaded.Manifest.Id}' ({other.Loaded.Manifest.AssemblyPath})"), null);
            }
        }
        var duplicate = manifest.Methods.GroupBy(m => m).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) return new Entry(Info(PluginStatus.Failed, $"peft_type '{duplicate.Key}' is declared twice"), null);

        if (_trust is not null)
        {
            try
            {
                if (_trust.Check(folder) is { } refusal) return new Entry(Info(PluginStatus.Refused, refusal), null);
            }
            catch (IOException e) { return new Entry(Info(PluginStatus.Refused, $"cannot hash the plugin files: {e.Message}"), null); }
        }

        try
        {
            PluginAssembly loaded = PluginAssembly.Load(manifest);
            return new Entry(Info(PluginStatus.Loaded, null), loaded);
        }
        catch (PluginLoadException e)
        {
            return new Entry(Info(PluginStatus.Failed, e.Message), null);
        }
        catch (Exception e)
        {
            // A plugin's own code (a static constructor, a tuner constructor) may throw anything.
            return new Entry(Info(PluginStatus.Failed, $"{e.GetType().Name}: {e.Message}"), null);
        }
    }

    private static string? CheckContract(PluginManifest manifest)
    {
        (int major, int minor) plugin;
        try { plugin = PeftContract.ParseVersion(manifest.ContractVersion); }
        catch (FormatException) { return $"invalid contract version '{manifest.ContractVersion}' in the manifest"; }
        if (plugin.major != PeftContract.Major)
            return $"built against contract {manifest.ContractVersion}; this host implements contract {PeftContract.Version} (major versions must match): rebuild the plugin against this PeftHost.Abstractions";
        if (plugin.minor > PeftContract.Minor)
            return $"built against contract {manifest.ContractVersion}, newer than this host's {PeftContract.Version}: update the host";
        return null;
    }

    private static Entry Failed(string id, string path, string error) =>
        new(new PluginInfo(id, null, PluginStatus.Failed, [], path, error), null);

    private void Log(PluginInfo info)
    {
        if (info.Status == PluginStatus.Loaded)
            _logger.LogInformation("Loaded plugin {Id} {Version} ({Methods}) from {Path}", info.Id, info.Version, string.Join(", ", info.Methods), info.Path);
        else
            _logger.LogWarning("Plugin {Id} {Status}: {Error}", info.Id, info.Status.ToString().ToLowerInvariant(), info.Error);
    }

    private sealed record Entry(PluginInfo Info, PluginAssembly? Loaded);

    // An unloaded version: what to name it by, and a weak reference to its load context (no strong reference to the plugin).
    private sealed class Retired(PluginAssembly plugin)
    {
        public LeakedContext Info { get; } = new(plugin.Manifest.Id, plugin.Manifest.Version, plugin.Manifest.AssemblyPath);

        public WeakReference Context { get; } = plugin.Context;

        public bool Reported { get; set; }
    }
}
