namespace PeftHost.Engine.Plugins;

/// <summary>Settings of the plugin catalog (bound from configuration section "PeftHost" by the hosting integration).</summary>
public sealed class PluginCatalogOptions
{
    /// <summary>The plugins folder: one sub-folder per plugin. Default: "plugins" beside the application.</summary>
    public string PluginsDirectory { get; set; } = Path.Combine(AppContext.BaseDirectory, "plugins");

    /// <summary>Whether a watcher reloads plugins whose files change.</summary>
    public bool HotReload { get; set; } = true;

    /// <summary>Quiet time after the last file change before a reload starts (copies are often several writes).</summary>
    public TimeSpan ReloadDebounce { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Trust mode: "off" (default) or "allow-list" (only files whose SHA-256 is in <see cref="TrustListPath"/> load).</summary>
    public string TrustMode { get; set; } = "off";

    /// <summary>The allow-list file (one SHA-256 per line, sha256sum format accepted), when TrustMode is "allow-list".</summary>
    public string? TrustListPath { get; set; }

    /// <summary>The trust list given directly (overrides <see cref="TrustListPath"/>).</summary>
    public PluginTrustList? TrustList { get; set; }

    /// <summary>The trust list in force, or null when trust checking is off.</summary>
    public PluginTrustList? ResolveTrustList() => TrustMode switch
    {
        "off" or "" => null,
        "allow-list" => TrustList ?? (TrustListPath is { } p ? PluginTrustList.FromFile(p) : throw new InvalidOperationException("TrustMode is 'allow-list' but no TrustListPath is set.")),
        _ => throw new InvalidOperationException($"Unknown TrustMode '{TrustMode}': use 'off' or 'allow-list'."),
    };
}
