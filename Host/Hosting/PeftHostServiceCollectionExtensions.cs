using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PeftHost.Engine.Plugins;

namespace PeftHost.Hosting;

/// <summary>Registers PeftHost in a Microsoft.Extensions.Hosting application.</summary>
public static class PeftHostServiceCollectionExtensions
{
    /// <summary>The configuration section bound to <see cref="PluginCatalogOptions"/>.</summary>
    public const string SectionName = "PeftHost";

    /// <summary>
    /// Adds the plugin catalog (a singleton) and a hosted service that scans the plugins folder at
    /// start and, when <see cref="PluginCatalogOptions.HotReload"/> is on, reloads changed plugins.
    /// </summary>
    public static IServiceCollection AddPeftHost(this IServiceCollection services, Action<PluginCatalogOptions>? configure = null)
    {
        services.AddOptions<PluginCatalogOptions>();
        if (configure is not null) services.Configure(configure);
        services.AddSingleton(sp => new PluginCatalog(sp.GetRequiredService<IOptions<PluginCatalogOptions>>().Value, sp.GetService<ILoggerFactory>()));
        services.AddHostedService<PeftHostService>();
        return services;
    }

    /// <summary>As <see cref="AddPeftHost(IServiceCollection, Action{PluginCatalogOptions}?)"/>, with options bound from a configuration section (PluginsDirectory, HotReload, ReloadDebounce, TrustMode, TrustListPath).</summary>
    public static IServiceCollection AddPeftHost(this IServiceCollection services, IConfiguration section)
    {
        services.AddPeftHost();
        services.Configure<PluginCatalogOptions>(section);
        return services;
    }
}
