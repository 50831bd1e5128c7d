namespace PeftHost.Llama.Runtime;

/// <summary>llama.cpp refused something (its native library, a GGUF file, an adapter, a decode); the message says what and why.</summary>
public sealed class LlamaCppException : Exception
{
    /// <summary>Creates the exception.</summary>
    public LlamaCppException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
