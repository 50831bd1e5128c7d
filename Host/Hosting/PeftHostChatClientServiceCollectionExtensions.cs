using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PeftHost.Engine.Plugins;
using PeftHost.Serving;
using PeftHost.Serving.ChatClient;

namespace PeftHost.Hosting;

/// <summary>Registers PeftHost's <see cref="IChatClient"/> in a Microsoft.Extensions.DependencyInjection container.</summary>
public static class PeftHostChatClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds a <see cref="ServedModel"/> (a singleton, loaded on first use) and an <see cref="IChatClient"/> over it
    /// (<see cref="PeftHostChatClient"/>), so code written against Microsoft.Extensions.AI runs on PeftHost.
    /// With <c>AddPeftHost</c> registered too, the model's adapters come through that catalog (its hot reloads reach
    /// the model); otherwise through a catalog of <see cref="ServedModelOptions.PluginsFolder"/>. Returns
    /// Microsoft.Extensions.AI's builder, to add its middleware (logging, caching, telemetry) around the client.
    /// </summary>
    public static ChatClientBuilder AddPeftHostChatClient(this IServiceCollection services, ServedModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton(sp => ServedModel.Open(options, sp.GetService<PluginCatalog>(), sp.GetService<ILoggerFactory>()));
        return services.AddChatClient(sp => new PeftHostChatClient(sp.GetRequiredService<ServedModel>()));
    }
}
