using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PeftHost.Engine.Plugins;

namespace PeftHost.Hosting;

/// <summary>Runs the plugin catalog and its watcher for the lifetime of the host.</summary>
internal sealed class PeftHostService(PluginCatalog catalog, IOptions<PluginCatalogOptions> options, ILogger<PeftHostService> logger) : IHostedService, IDisposable
{
    private PluginFolderWatcher? _watcher;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        catalog.Scan();
        logger.LogInformation("PeftHost serves {Types} from {Folder}", string.Join(", ", catalog.PeftTypes), catalog.PluginsDirectory);
        if (options.Value.HotReload)
        {
            _watcher = new PluginFolderWatcher(catalog);
            _watcher.Start();
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _watcher?.Dispose();
        _watcher = null;
        return Task.CompletedTask;
    }

    public void Dispose() => _watcher?.Dispose();
}
