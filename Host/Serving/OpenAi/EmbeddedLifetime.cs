using Microsoft.Extensions.Hosting;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// The server's host lifetime: it neither listens for Ctrl+C nor SIGTERM (ASP.NET Core's console lifetime would),
/// so an application that embeds the server keeps its own signal handling; the owner stops the server (the CLI on Ctrl+C).
/// </summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
