using Microsoft.Extensions.Logging;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Plugins;

/// <summary>
/// A reload compiles the new build's code before handing it the live adapters (outside the models' write lock, which
/// serving waits for): every method of the LoRA plugin is compiled ahead, none left to its first call.
/// </summary>
public sealed class PluginWarmupTests
{
    [Fact]
    public void A_reload_compiles_the_new_build_ahead_of_the_handover()
    {
        var logs = new CapturingLoggerFactory();
        using ScratchFolder plugins = PluginDirs.Scratch("lora");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false }, logs);
        catalog.Scan();
        // Another build of the same plugin (another version), as an update dropped into the folder.
        PluginDirs.Copy(PluginDirs.LoraAlt, Path.Combine(plugins.Path, "lora"));
        ReloadResult result = catalog.Reload(Path.Combine(plugins.Path, "lora"));
        Assert.True(result.Succeeded, result.Error);
        string line = Assert.Single(logs.Messages, m => m.StartsWith("Compiled ", StringComparison.Ordinal));
        string[] words = line.Split(' ');
        Assert.True(int.Parse(words[1], System.Globalization.CultureInfo.InvariantCulture) > 100, line);   // the LoRA plugin has hundreds of methods
        Assert.EndsWith("(0 left to their first call)", line, StringComparison.Ordinal);
    }

    private sealed class CapturingLoggerFactory : ILoggerFactory, ILogger
    {
        public List<string> Messages { get; } = [];

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider) { }

        public void Dispose() { }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages) Messages.Add(formatter(state, exception));
        }
    }
}
