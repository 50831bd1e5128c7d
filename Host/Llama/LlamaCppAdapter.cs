using LLama.Native;

namespace PeftHost.Llama;

/// <summary>A GGUF-LoRA adapter loaded by llama.cpp beside its base model (freed with the model).</summary>
public sealed class LlamaCppAdapter
{
    internal LlamaCppAdapter(string name, string path, LoraAdapter native)
    {
        Name = name;
        Path = path;
        Native = native;
    }

    /// <summary>The adapter's name (as the user gave it).</summary>
    public string Name { get; }

    /// <summary>The GGUF-LoRA file.</summary>
    public string Path { get; }

    internal LoraAdapter Native { get; }
}
