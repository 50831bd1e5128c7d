using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>{% set target = expr %}</c>: assigns in the current scope (or to a namespace attribute).</summary>
internal sealed class SetStmt(SourcePosition position, AssignTarget target, Expr value) : Stmt(position)
{
    public override Flow Render(Frame frame, StringBuilder output)
    {
        object? v = value.Evaluate(frame);
        At(frame);
        target.Assign(frame, v);
        return Flow.Normal;
    }

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        value.Analyze(current);
        target.Analyze(current, asParameter: false);
    }
}

/// <summary><c>{% set target | filters %}body{% endset %}</c>: assigns the rendered body (rendered in its own scope).</summary>
internal sealed class SetBlockStmt(SourcePosition position, AssignTarget target, FilterExpr? filter, IReadOnlyList<Stmt> body) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        target.Analyze(current, asParameter: false);
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, _ => { }, body));
    }

    public override Flow Render(Frame frame, StringBuilder output)
    {
        object? v = RenderToString(body, frame.Child(_bodyUndefined));
        if (filter is not null) v = filter.Apply(frame, v);
        At(frame);
        target.Assign(frame, v);
        return Flow.Normal;
    }
}
