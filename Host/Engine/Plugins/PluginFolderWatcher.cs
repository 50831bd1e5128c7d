using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// Watches the plugins folder and reloads a plugin once its files have stopped changing for the
/// debounce time (a copy is often several writes). A reload of a half-written file fails cleanly
/// (the old version keeps serving) and the next write schedules another attempt.
/// </summary>
public sealed class PluginFolderWatcher : IDisposable
{
    private readonly PluginCatalog _catalog;
    private readonly ILogger _logger;
    private readonly TimeSpan _debounce;
    private readonly ConcurrentDictionary<string, Timer> _pending = new(StringComparer.Ordinal);
    private FileSystemWatcher? _watcher;

    /// <summary>Watches <paramref name="catalog"/>'s folder once <see cref="Start"/> is called.</summary>
    public PluginFolderWatcher(PluginCatalog catalog)
    {
        _catalog = catalog;
        _logger = catalog.LoggerFactory.CreateLogger<PluginFolderWatcher>();
        _debounce = catalog.Options.ReloadDebounce;
    }

    /// <summary>Starts watching.</summary>
    public void Start()
    {
        if (_watcher is not null) return;
        _watcher = new FileSystemWatcher(_catalog.PluginsDirectory)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.LastWrite | NotifyFilters.Size,
        };
        _watcher.Changed += (_, e) => Touched(e.FullPath);
        _watcher.Created += (_, e) => Touched(e.FullPath);
        _watcher.Deleted += (_, e) => Touched(e.FullPath);
        _watcher.Renamed += (_, e) => { Touched(e.OldFullPath); Touched(e.FullPath); };
        _watcher.Error += (_, e) => _logger.LogError(e.GetException(), "Plugin folder watcher error; changes may be missed until the next one");
        _watcher.EnableRaisingEvents = true;
        _logger.LogInformation("Watching {Folder} for plugin changes (debounce {Ms} ms)", _catalog.PluginsDirectory, _debounce.TotalMilliseconds);
    }

    private void Touched(string path)
    {
        string relative = Path.GetRelativePath(_catalog.PluginsDirectory, path);
        if (relative.StartsWith("..", StringComparison.Ordinal) || relative == ".") return;
        string first = relative.Split(Path.DirectorySeparatorChar)[0];
        string folder = Path.Combine(_catalog.PluginsDirectory, first);
        if (File.Exists(folder)) return; // a loose file in the plugins folder is not a plugin
        Timer timer = _pending.GetOrAdd(folder, f => new Timer(_ => Fire(f), null, Timeout.Infinite, Timeout.Infinite));
        timer.Change(_debounce, Timeout.InfiniteTimeSpan); // every event restarts the quiet period
    }

    private void Fire(string folder)
    {
        if (_pending.TryRemove(folder, out Timer? timer)) timer.Dispose();
        try
        {
            _catalog.Reload(folder);
        }
        catch (Exception e)
        {
            // The catalog reports failures as results; anything else is a host bug, logged, never thrown on a timer thread.
            _logger.LogError(e, "Reloading the plugin in {Folder} failed unexpectedly", folder);
        }
    }

    /// <summary>Stops watching and cancels pending reloads.</summary>
    public void Dispose()
    {
        _watcher?.Dispose();
        _watcher = null;
        foreach (Timer t in _pending.Values) t.Dispose();
        _pending.Clear();
    }
}
