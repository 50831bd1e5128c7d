namespace PeftHost.Abstractions.Surgery;

/// <summary>A module could not be found or replaced; the message names the module path and why.</summary>
public sealed class ModelSurgeryException(string message) : Exception(message);
