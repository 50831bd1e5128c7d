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

    // As Jinja's tree has it: the first branch, the elif branches (each an if of its own), the else.
    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        branches[0].Test.Analyze(current);
        Symbols body = current.Copy();
        AnalyzeBody(branches[0].Body, body, scope, nested);
        Symbols elifs = current.Copy();
        for (int i = 1; i < branches.Count; i++)
        {
            branches[i].Test.Analyze(elifs);
            Symbols elifBody = elifs.Copy();
            AnalyzeBody(branches[i].Body, elifBody, scope, nested);
            elifs.BranchUpdate([elifBody, elifs.Copy(), elifs.Copy()]);
        }
        Symbols orElse = current.Copy();
        AnalyzeBody(otherwise, orElse, scope, nested);
        current.BranchUpdate([body, elifs, orElse]);
    }
}
