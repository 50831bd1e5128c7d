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
