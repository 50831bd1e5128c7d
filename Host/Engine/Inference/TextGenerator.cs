using System.Diagnostics;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Models;
using PeftHost.Models.Generation;
using PeftHost.Tokenizers;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference;

/// <summary>
/// Text in, text out: the prompt through the tokenizer (and its chat template), the ids through a
/// token stream (the TorchSharp <see cref="TokenGenerator"/> with the KV cache, or any other
/// backend's), the tokens back to text as they come, ending at end-of-sequence or a stop string.
/// </summary>
public static class TextGenerator
{
    /// <summary>A source of generated ids for a prompt: yields tokens one at a time, stops at the options' stop ids.</summary>
    public delegate IEnumerable<long> TokenStream(IReadOnlyList<long> promptIds, GenerationOptions options);

    /// <summary>
    /// The prompt's ids: with <paramref name="chat"/> the tokenizer's chat template renders the system
    /// and user messages with the assistant's generation prompt (its special tokens come from the
    /// template, so none are added); otherwise the text is encoded as the tokenizer encodes by default.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty, <paramref name="chat"/> is asked of a tokenizer without a chat template, or a system prompt is given without it.</exception>
    /// <exception cref="ChatTemplateException">The template cannot render these messages.</exception>
    public static IReadOnlyList<long> PromptIds(ITextTokenizer tokenizer, string prompt, bool chat, string? systemPrompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (string.IsNullOrEmpty(prompt)) throw new ArgumentException("The prompt is empty.", nameof(prompt));
        if (!chat)
        {
            if (systemPrompt is not null) throw new ArgumentException("A system prompt needs the chat template: add --chat.");
            return [.. tokenizer.Encode(prompt).Select(i => (long)i)];
        }
        ChatTemplate template = tokenizer.ChatTemplate
            ?? throw new ArgumentException("The tokenizer has no chat template (tokenizer_config.json has no chat_template): run without --chat.");
        var messages = new List<ChatMessage>();
        if (systemPrompt is not null) messages.Add(new ChatMessage("system", systemPrompt));
        messages.Add(new ChatMessage("user", prompt));
        return [.. tokenizer.Encode(template.Apply(messages, addGenerationPrompt: true), addSpecialTokens: false).Select(i => (long)i)];
    }

    /// <summary>
    /// Generates from <paramref name="promptIds"/> with <paramref name="stream"/>, calling
    /// <paramref name="onText"/> with each piece of final text as it comes.
    /// </summary>
    public static TextGenerationResult Generate(ITextTokenizer tokenizer, IReadOnlyList<long> promptIds, TokenStream stream, TextGenerationSettings settings, Action<string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.StopStrings.Any(string.IsNullOrEmpty))
            throw new ArgumentException("A stop string is empty: it would match before the first token (give each --stop some text).", nameof(settings));
        var stopIds = new HashSet<long>(settings.Generation.StopTokenIds);
        foreach (int id in tokenizer.EosTokenIds) stopIds.Add(id);
        GenerationOptions options = settings.Generation with { StopTokenIds = stopIds };
        var decoder = new StreamingTextDecoder(tokenizer, settings.StopStrings);
        var generated = new List<long>();
        GenerationFinishReason reason = GenerationFinishReason.MaxNewTokens;
        long start = Stopwatch.GetTimestamp();
        foreach (long id in stream(promptIds, options))
        {
            generated.Add(id);
            Emit(decoder.Add(id), onText);
            if (stopIds.Contains(id))
            {
                reason = GenerationFinishReason.EndOfSequence;
                break;
            }
            if (decoder.Stopped)
            {
                reason = GenerationFinishReason.StopString;
                break;
            }
        }
        Emit(decoder.Flush(), onText);
        return new TextGenerationResult(decoder.Text, promptIds, generated, reason, Stopwatch.GetElapsedTime(start).TotalSeconds);
    }

    /// <summary>Generates with a TorchSharp causal LM (<see cref="TokenGenerator"/>, KV cache unless the options turn it off).</summary>
    /// <exception cref="ArgumentException">A prompt id is outside the model's vocabulary.</exception>
    public static TextGenerationResult Generate(ICausalLM model, ITextTokenizer tokenizer, string prompt, TextGenerationSettings settings, Action<string>? onText = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(settings);
        IReadOnlyList<long> ids = PromptIds(tokenizer, prompt, settings.Chat, settings.SystemPrompt);
        long vocab = model.Config.VocabSize;
        long outside = ids.FirstOrDefault(i => i < 0 || i >= vocab, -1);
        if (outside >= 0)
            throw new ArgumentException($"The prompt encodes to token id {outside}, outside the model's vocabulary of {vocab}: the tokenizer does not belong to this model.");
        return Generate(tokenizer, ids, (p, o) => TokenGenerator.Generate(model, p, o), settings, onText);
    }

    /// <summary>
    /// Loads <paramref name="modelFolder"/> (its tokenizer from the same folder) with its adapters and
    /// generates, streaming text to <paramref name="onText"/>.
    /// </summary>
    /// <exception cref="NotSupportedException">The model is not a causal language model.</exception>
    /// <exception cref="TokenizerLoadException">The folder has no readable tokenizer.</exception>
    public static TextGenerationResult Run(string modelFolder, IReadOnlyList<AdapterSpec> adapters, string pluginsFolder, ScalarType dtype, Device device,
        string prompt, TextGenerationSettings settings, Action<string>? onText = null)
    {
        // The tokenizer first: a folder without one fails before the weights are read.
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(modelFolder);
        using AdaptedModel loaded = AdaptedModel.Load(modelFolder, adapters, pluginsFolder, dtype, device);
        if (loaded.Model is not ICausalLM lm)
            throw new NotSupportedException($"{loaded.Model.GetType().Name} ({loaded.Config.Architecture}) does not generate text: use a causal language model.");
        return loaded.Run(() => Generate(lm, tokenizer, prompt, settings, onText));
    }

    /// <summary>
    /// Opens the backend <paramref name="options"/> names (the tokenizer first: a folder without one
    /// fails before any weights are read or exported) and generates, streaming text to <paramref name="onText"/>.
    /// <paramref name="onOpened"/> is told the backend before generation starts (to report what runs).
    /// </summary>
    public static TextGenerationResult Run(InferenceBackendOptions options, string prompt, TextGenerationSettings settings, Action<string>? onText = null,
        Action<IInferenceBackend>? onOpened = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(options.ModelFolder);
        int needed = PromptIds(tokenizer, prompt, settings.Chat, settings.SystemPrompt).Count + settings.Generation.MaxNewTokens;
        // GGUF backends size their KV cache for this request.
        using IInferenceBackend backend = InferenceBackends.Open(options.Kind == InferenceBackendKind.Torch || options.ContextSize is not null
            ? options
            : options with { ContextSize = needed });
        onOpened?.Invoke(backend);
        return Generate(backend, prompt, settings, onText);
    }

    /// <summary>
    /// Generates on any backend: the prompt through the backend's tokenizer (and chat template), the ids
    /// through <see cref="IInferenceBackend.Generate"/> with <paramref name="adapters"/> (null: all of them).
    /// </summary>
    /// <exception cref="ArgumentException">The model folder has no tokenizer.</exception>
    public static TextGenerationResult Generate(IInferenceBackend backend, string prompt, TextGenerationSettings settings, Action<string>? onText = null,
        IReadOnlyList<AdapterScale>? adapters = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(settings);
        ITextTokenizer tokenizer = backend.Tokenizer
            ?? throw new ArgumentException("The model folder has no tokenizer (tokenizer.json or vocab.txt): generate needs one to turn text into ids.");
        IReadOnlyList<long> ids = PromptIds(tokenizer, prompt, settings.Chat, settings.SystemPrompt);
        long outside = ids.FirstOrDefault(i => i < 0 || i >= backend.VocabSize, -1);
        if (outside >= 0)
            throw new ArgumentException($"The prompt encodes to token id {outside}, outside the model's vocabulary of {backend.VocabSize}: the tokenizer does not belong to this model.");
        IEnumerable<long> Stream(IReadOnlyList<long> p, GenerationOptions o) =>
            backend.Generate([.. p.Select(i => (int)i)], o, adapters).Select(i => (long)i);
        return Generate(tokenizer, ids, Stream, settings, onText);
    }

    private static void Emit(string piece, Action<string>? onText)
    {
        if (piece.Length > 0) onText?.Invoke(piece);
    }
}
