namespace PeftHost.Tokenizers;

/// <summary>A chat template could not be recognised, or cannot express the given messages.</summary>
/// <param name="message">What is wrong.</param>
public sealed class ChatTemplateException(string message) : Exception(message);
