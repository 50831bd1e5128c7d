using System.Diagnostics;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Inference;

/// <summary>
/// The chat template benchmark: parsing a template and rendering a typical chat (a system prompt and three
/// turns, with the generation prompt) with the Jinja interpreter, as generate --chat and a server do per request.
/// </summary>
public static class ChatTemplateBenchmark
{
    /// <summary>Figures of one run: the median parse, the median and 99th percentile render, the prompt's length.</summary>
    public sealed record Result(double ParseMicroseconds, double RenderMedianMicroseconds, double RenderP99Microseconds, int PromptChars, int Renders);

    private static readonly ChatMessage[] Conversation =
    [
        new("system", "You are a helpful assistant. Answer briefly."),
        new("user", "What is the capital of France?"),
        new("assistant", "The capital of France is Paris."),
        new("user", "And how many people live there?"),
    ];

    /// <summary>Runs the benchmark on one template text.</summary>
    /// <exception cref="ChatTemplateException">The template does not parse or does not render the conversation.</exception>
    public static Result Run(string template, IReadOnlyDictionary<string, string> specialTokens, int renders = 20_000)
    {
        ArgumentNullException.ThrowIfNull(template);
        // Each parse gets a text of its own (a comment appended), so that the parse cache does not answer.
        var parses = new List<double>();
        for (int i = 0; i < 201; i++)
        {
            string text = template + "{# " + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + " #}";
            long start = Stopwatch.GetTimestamp();
            ChatTemplate.Parse(text, specialTokens, "benchmark", null);
            if (i > 0) parses.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
        ChatTemplate chat = ChatTemplate.Parse(template, specialTokens, "benchmark", null);
        int chars = chat.Apply(Conversation, addGenerationPrompt: true).Length;
        for (int i = 0; i < 1000; i++) chat.Apply(Conversation, addGenerationPrompt: true);
        var times = new double[renders];
        for (int i = 0; i < renders; i++)
        {
            long start = Stopwatch.GetTimestamp();
            chat.Apply(Conversation, addGenerationPrompt: true);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }
        Array.Sort(times);
        parses.Sort();
        return new Result(parses[parses.Count / 2], times[renders / 2], times[(int)(renders * 0.99)], chars, renders);
    }
}
