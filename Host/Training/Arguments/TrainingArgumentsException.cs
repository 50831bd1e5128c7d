namespace PeftHost.Training.Arguments;

/// <summary>A training config that cannot be used: the message names the source, the field and what was expected.</summary>
public sealed class TrainingArgumentsException(string message) : Exception(message);
