namespace PeftHost.Abstractions.Config;

/// <summary>An adapter configuration is invalid: the message names the field and what is wrong.</summary>
public sealed class TunerConfigException(string message) : Exception(message);
