namespace PeftHost.Serving.OpenAi;

/// <summary>How <see cref="OpenAiServer"/> listens and what it lets in.</summary>
public sealed record OpenAiServerOptions
{
    /// <summary>The default address: loopback only.</summary>
    public const string DefaultHost = "127.0.0.1";

    /// <summary>The default port (vLLM's).</summary>
    public const int DefaultPort = 8000;

    /// <summary>The default request timeout, in seconds.</summary>
    public const double DefaultRequestTimeoutSeconds = 300;

    /// <summary>The default largest request body: 1 MiB.</summary>
    public const long DefaultMaxBodyBytes = 1 << 20;

    /// <summary>The address to bind: an IP address or <c>localhost</c>. Anything but loopback needs <see cref="ApiKey"/>.</summary>
    public string Host { get; init; } = DefaultHost;

    /// <summary>The port (0: any free port; <see cref="OpenAiServer.Address"/> tells which).</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>When set, every request but /health needs <c>Authorization: Bearer KEY</c> (compared in constant time).</summary>
    public string? ApiKey { get; init; }

    /// <summary>The folder under which /v1/load_lora_adapter may load adapters (null: loading at run time is off).</summary>
    public string? AdapterRoot { get; init; }

    /// <summary>A generation request still running after this many seconds is ended.</summary>
    public double RequestTimeoutSeconds { get; init; } = DefaultRequestTimeoutSeconds;

    /// <summary>The largest request body accepted (HTTP 413 above).</summary>
    public long MaxBodyBytes { get; init; } = DefaultMaxBodyBytes;

    /// <summary>Whether requests are logged to the console (ASP.NET Core's logging; off: only warnings and errors of the server itself).</summary>
    public bool Verbose { get; init; }
}
