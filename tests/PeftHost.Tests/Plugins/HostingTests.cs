using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PeftHost.Engine.Plugins;
using PeftHost.Hosting;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests;

public class HostingTests
{
    [Fact]
    public async Task AddPeftHost_binds_options_from_configuration_and_scans_at_start()
    {
        using var dir = PluginDirs.Scratch("lora", "ia3");
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["PeftHost:PluginsDirectory"] = dir.Path,
            ["PeftHost:HotReload"] = "true",
            ["PeftHost:ReloadDebounce"] = "00:00:00.200",
        });
        builder.Services.AddPeftHost(builder.Configuration.GetSection("PeftHost"));
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);

        var catalog = host.Services.GetRequiredService<PluginCatalog>();
        Assert.Equal(dir.Path, catalog.PluginsDirectory);
        Assert.Equal(TimeSpan.FromMilliseconds(200), catalog.Options.ReloadDebounce);
        Assert.Equal(["IA3", "LORA"], catalog.PeftTypes);

        // The hosted watcher is live: a new build dropped in is picked up.
        using var reloaded = new SemaphoreSlim(0);
        catalog.Reloaded += (_, r) => { if (r.Succeeded) reloaded.Release(); };
        PluginDirs.Copy(PluginDirs.LoraAlt, Path.Combine(dir.Path, "lora"));
        Assert.True(await reloaded.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
        Assert.NotEqual("0.1.0", catalog.GetPlugin("LORA").Manifest.Version);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public void An_unknown_trust_mode_is_a_clear_error()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new PluginCatalog(new PluginCatalogOptions { TrustMode = "maybe" }));
        Assert.Contains("Unknown TrustMode 'maybe'", e.Message);
    }
}
