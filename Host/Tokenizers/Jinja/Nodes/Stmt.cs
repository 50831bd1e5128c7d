using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>How a statement ends: normally, or by a break/continue that the enclosing loop handles.</summary>
internal enum Flow
{
    Normal,
    Break,
    Continue,
}

/// <summary>A statement of the syntax tree: text, <c>{{ }}</c>, or a <c>{% %}</c> tag with its body.</summary>
internal abstract class Stmt(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    public abstract Flow Render(Frame frame, StringBuilder output);

    /// <summary>
    /// Records the names this statement reads and assigns in its scope (Jinja's FrameSymbolVisitor), in order.
    /// <paramref name="current"/> is the scope's symbols as seen at this point (a copy inside an if branch),
    /// <paramref name="scope"/> the scope's own; a statement that opens scopes queues their analysis in
    /// <paramref name="nested"/>: it runs once the enclosing scope is complete, as Jinja compiles them.
    /// </summary>
    public virtual void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
    }

    public static void AnalyzeBody(IReadOnlyList<Stmt> body, Symbols current, Symbols scope, Queue<Action> nested)
    {
        foreach (Stmt s in body) s.Analyze(current, scope, nested);
    }

    /// <summary>Analyzes a scope opened inside <paramref name="parent"/>: what it declares first, then its body.</summary>
    public static IReadOnlyList<string> AnalyzeScope(Symbols parent, Queue<Action> nested, Action<Symbols> declare, IReadOnlyList<Stmt> body)
    {
        var symbols = new Symbols(parent);
        declare(symbols);
        AnalyzeBody(body, symbols, symbols, nested);
        return symbols.UndefinedAtStart();
    }

    protected void At(Frame frame) => frame.Context.Position = Position;

    /// <summary>Renders a body until a break or continue.</summary>
    public static Flow RenderBody(IReadOnlyList<Stmt> body, Frame frame, StringBuilder output)
    {
        foreach (Stmt s in body)
        {
            Flow flow = s.Render(frame, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    /// <summary>Renders a body into its own text (macros, block sets, filter blocks).</summary>
    public static string RenderToString(IReadOnlyList<Stmt> body, Frame frame)
    {
        var sb = new StringBuilder();
        RenderBody(body, frame, sb);
        return sb.ToString();
    }
}
