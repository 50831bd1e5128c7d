using System.Text;
using PeftHost.Tokenizers.Jinja.Nodes;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja;

/// <summary>
/// A parsed Jinja template: parse once, render many times (concurrently too: a render keeps its state in
/// its own context; the tree is never changed).
/// </summary>
internal sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Stmt> _body;
    private readonly IReadOnlyList<string> _undefinedAtStart;

    private JinjaTemplate(JinjaEnvironment environment, IReadOnlyList<Stmt> body)
    {
        Environment = environment;
        _body = body;
        // Jinja's compile-time scoping, for the template and then, once it is complete, each scope inside.
        var root = new Symbols(null);
        var nested = new Queue<Action>();
        Stmt.AnalyzeBody(body, root, root, nested);
        _undefinedAtStart = root.UndefinedAtStart();
        while (nested.Count > 0) nested.Dequeue()();
    }

    public JinjaEnvironment Environment { get; }

    public static JinjaTemplate Parse(JinjaEnvironment environment, string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        List<Token> tokens = Lexer.Tokenize(source, environment.TrimBlocks, environment.LstripBlocks, environment.KeepTrailingNewline);
        return new JinjaTemplate(environment, Parser.Parse(tokens, environment));
    }

    /// <summary>Renders with these variables (.NET values or JSON, converted as <see cref="ClrValues"/> says).</summary>
    /// <exception cref="JinjaRuntimeException">Evaluation failed; the message names the position.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, TimeProvider? clock = null)
    {
        var values = new Dictionary<string, object?>(variables.Count, StringComparer.Ordinal);
        foreach ((string name, object? value) in variables) values[name] = ClrValues.ToTemplate(value);
        var context = new RenderContext(Environment, values, clock ?? TimeProvider.System);
        var output = new StringBuilder(1024);
        try
        {
            var frame = new Frame(context, null);
            frame.MarkUnassigned(_undefinedAtStart);
            Stmt.RenderBody(_body, frame, output);
        }
        catch (TemplateError e)
        {
            throw new JinjaRuntimeException(e.Kind, e.Message, context.Position, e);
        }
        return output.ToString();
    }
}
