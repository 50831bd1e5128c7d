using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// The state of one render: the environment, the render variables, and the position of the node being
/// evaluated (so an error raised deep in an operator or filter names its place in the template).
/// </summary>
internal sealed class RenderContext(JinjaEnvironment environment, IReadOnlyDictionary<string, object?> variables, TimeProvider clock)
{
    /// <summary>Macro calls nested deeper than this fail instead of overflowing the stack.</summary>
    public const int MaxCallDepth = 200;

    public JinjaEnvironment Environment { get; } = environment;

    /// <summary>The clock functions such as transformers' strftime_now read (injectable for tests).</summary>
    public TimeProvider Clock { get; } = clock;

    public SourcePosition Position { get; set; }

    public int CallDepth { get; set; }

    /// <summary>True while a printed expression of literals is evaluated (Jinja computes those when compiling).</summary>
    public bool FoldingConstants { get; set; }

    public object? LookupGlobal(string name)
    {
        if (variables.TryGetValue(name, out object? value)) return value;
        if (Environment.Globals.TryGetValue(name, out object? global)) return global;
        return Undefined.ForName(name);
    }
}
