using Microsoft.Extensions.Logging;

namespace PeftHost.Abstractions.Tuning;

/// <summary>What the host gives a tuner when it attaches to a model.</summary>
/// <param name="Logger">The logger to report through (named after the plugin by the host).</param>
public sealed record TunerContext(ILogger Logger);
