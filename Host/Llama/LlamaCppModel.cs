using System.Text;
using LLama.Native;
using PeftHost.Llama.Runtime;

namespace PeftHost.Llama;

/// <summary>
/// A GGUF model opened by llama.cpp (through LLamaSharp): the weights memory-mapped once, shared by
/// every <see cref="LlamaCppContext"/> made from it, and the GGUF-LoRA adapters loaded beside it.
/// </summary>
public sealed class LlamaCppModel : IDisposable
{
    private readonly SafeLlamaModelHandle _handle;
    private readonly List<LlamaCppAdapter> _adapters = [];
    private GgufLoraFit? _loraFit;

    private LlamaCppModel(string path, SafeLlamaModelHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    /// <summary>The GGUF file.</summary>
    public string Path { get; }

    /// <summary>Tokens in the vocabulary.</summary>
    public int VocabSize => _handle.Vocab.Count;

    /// <summary>The context length the model was trained for (llama.context_length).</summary>
    public int TrainedContextLength => _handle.ContextSize;

    /// <summary>Bytes of weights.</summary>
    public ulong SizeInBytes => _handle.SizeInBytes;

    /// <summary>llama.cpp's description ("llama ?B Q4_0").</summary>
    public string Description => _handle.Description;

    /// <summary>The weights' file type (general.file_type).</summary>
    public LLamaFtype FileType => _handle.FileType;

    internal SafeLlamaModelHandle Handle => _handle;

    /// <summary>Opens <paramref name="ggufPath"/>; with <paramref name="vocabOnly"/> only the vocabulary is read (tokenizing needs no weights).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="LlamaCppException">llama.cpp refused the file (its log says why) or its library could not be loaded.</exception>
    public static LlamaCppModel Open(string ggufPath, bool vocabOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(ggufPath);
        string full = System.IO.Path.GetFullPath(ggufPath);
        if (!File.Exists(full)) throw new FileNotFoundException($"GGUF file not found: {full}", full);
        LlamaCppRuntime.EnsureLoaded();
        LlamaCppRuntime.ClearLog();
        LLamaModelParams p = LLamaModelParams.Default();
        p.n_gpu_layers = 0;
        p.vocab_only = vocabOnly;
        try
        {
            return new LlamaCppModel(full, SafeLlamaModelHandle.LoadFromFile(full, p));
        }
        catch (LLama.Exceptions.RuntimeError e)
        {
            throw new LlamaCppException($"{full}: llama.cpp could not load it: {LlamaCppRuntime.RecentLog()}", e);
        }
    }

    /// <summary>llama.cpp's own tokenization of <paramref name="text"/> (the GGUF's tokenizer.ggml.* vocabulary and pre-tokenizer).</summary>
    public int[] Tokenize(string text, bool addBos = false, bool parseSpecial = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _handle.Tokenize(text, addBos, parseSpecial, Encoding.UTF8).Select(t => (int)t)];
    }

    /// <summary>
    /// Loads a GGUF-LoRA adapter (general.type adapter, adapter.type lora) for this model; it stays
    /// loaded until the model is disposed and is applied per context with <see cref="LlamaCppContext.SetAdapters"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a GGUF-LoRA adapter for this model: another architecture, a tensor the model lacks, or other dimensions (the message names the tensor).</exception>
    /// <exception cref="LlamaCppException">llama.cpp refused the adapter (its log says why).</exception>
    public LlamaCppAdapter LoadAdapter(string path, string name)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) throw new FileNotFoundException($"GGUF-LoRA file not found: {full}", full);
        (_loraFit ??= GgufLoraFit.Of(Path)).Check(full);
        LlamaCppRuntime.ClearLog();
        try
        {
            var adapter = new LlamaCppAdapter(name, full, _handle.LoadLoraFromFile(full));
            _adapters.Add(adapter);
            return adapter;
        }
        catch (LLama.Exceptions.RuntimeError e)
        {
            throw new LlamaCppException($"{full}: llama.cpp refused the adapter '{name}' for {Path}: {LlamaCppRuntime.RecentLog()}", e);
        }
    }

    /// <summary>Frees an adapter this model loaded (no context may apply it any more: set its adapters without it first).</summary>
    public void UnloadAdapter(LlamaCppAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (_adapters.Remove(adapter)) adapter.Native.Unload();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (LlamaCppAdapter a in _adapters) a.Native.Unload();
        _adapters.Clear();
        _handle.Dispose();
    }
}
