using PeftHost.Tokenizers.Jinja.Library;

namespace PeftHost.Tokenizers.Jinja;

/// <summary>
/// The settings of a Jinja environment (jinja2.Environment's): whitespace handling, extensions, and the
/// filters, tests and globals templates can use. Configure it once, then parse; parsed templates share it
/// and render concurrently.
/// </summary>
internal sealed class JinjaEnvironment
{
    /// <summary>Drop the first newline after a block or comment tag.</summary>
    public bool TrimBlocks { get; init; }

    /// <summary>Strip spaces and tabs from the start of a line up to a block or comment tag.</summary>
    public bool LstripBlocks { get; init; }

    /// <summary>Keep a newline at the end of the template (Jinja drops one by default).</summary>
    public bool KeepTrailingNewline { get; init; }

    /// <summary>Jinja's loopcontrols extension: <c>{% break %}</c> and <c>{% continue %}</c>.</summary>
    public bool LoopControls { get; init; }

    /// <summary>transformers' AssistantTracker extension: <c>{% generation %}...{% endgeneration %}</c>.</summary>
    public bool GenerationTag { get; init; }

    public Dictionary<string, FilterFunction> Filters { get; } = Library.Filters.Create();

    public Dictionary<string, TestFunction> Tests { get; } = Library.Tests.Create();

    public Dictionary<string, object?> Globals { get; } = Library.Globals.Create();

    /// <summary>Parses a template.</summary>
    /// <exception cref="Syntax.JinjaSyntaxException">The text is not valid Jinja (the message names line, column and what was expected).</exception>
    public JinjaTemplate Parse(string source) => JinjaTemplate.Parse(this, source);
}
