using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>{% if %}...{% elif %}...{% else %}...{% endif %}</c>; it opens no scope (a set inside it is seen after it).</summary>
internal sealed class IfStmt(SourcePosition position, IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> branches, IReadOnlyList<Stmt> otherwise) : Stmt(position)
{
    public override Flow Render(Frame frame, StringBuilder output)
    {
        foreach ((Expr test, IReadOnlyList<Stmt> body) in branches)
        {
            if (PyTypes.Truthy(test.Evaluate(frame))) return RenderBody(body, frame, output);
        }
        return RenderBody(otherwise, frame, output);
    }
}
