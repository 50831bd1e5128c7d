using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>Template text, copied to the output.</summary>
internal sealed class TextStmt(SourcePosition position, string text) : Stmt(position)
{
    public override Flow Render(Frame frame, StringBuilder output)
    {
        output.Append(text);
        return Flow.Normal;
    }
}

/// <summary><c>{{ expr }}</c> (or <c>{% print a, b %}</c>): the str() of each value; Undefined prints nothing.</summary>
internal sealed class PrintStmt(SourcePosition position, IReadOnlyList<Expr> values) : Stmt(position)
{
    public override Flow Render(Frame frame, StringBuilder output)
    {
        foreach (Expr e in values)
        {
            object? v = e.Evaluate(frame);
            if (v is string s)
            {
                output.Append(s);
                continue;
            }
            At(frame);
            output.Append(PyText.Str(v));
        }
        return Flow.Normal;
    }

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        foreach (Expr e in values) e.Analyze(current);
    }

}
