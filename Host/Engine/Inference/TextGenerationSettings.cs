using PeftHost.Models.Generation;

namespace PeftHost.Engine.Inference;

/// <summary>What <see cref="TextGenerator"/> does with a prompt: template, decoding settings, stop strings.</summary>
public sealed record TextGenerationSettings
{
    /// <summary>Decoding settings. Its stop token ids are added to the tokenizer's end-of-sequence ids.</summary>
    public GenerationOptions Generation { get; init; } = new();

    /// <summary>Generation ends when the text contains one of these; the stop string itself is not part of the text.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Apply the tokenizer's chat template to the prompt (as the user turn).</summary>
    public bool Chat { get; init; }

    /// <summary>With <see cref="Chat"/>: a system message before the user turn.</summary>
    public string? SystemPrompt { get; init; }
}
