using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>: calls the macro with the body as <c>caller</c>.</summary>
internal sealed class CallBlockStmt(SourcePosition position, CallExpr call, MacroStmt caller) : Stmt(position)
{
    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        call.Analyze(current);
        caller.AnalyzeBodyLater(scope, nested);
    }

    public override Flow Render(Frame frame, StringBuilder output)
    {
        object? result = call.EvaluateWith(frame, ("caller", caller.Define(frame)));
        At(frame);
        output.Append(PyText.Str(result));
        return Flow.Normal;
    }
}

/// <summary><c>{% filter upper %}body{% endfilter %}</c>: the rendered body through the filters.</summary>
internal sealed class FilterBlockStmt(SourcePosition position, FilterExpr filter, IReadOnlyList<Stmt> body) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        filter.Analyze(current);
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, _ => { }, body));
    }

    public override Flow Render(Frame frame, StringBuilder output)
    {
        Frame inner = frame.Child(_bodyUndefined);
        object? result = filter.Apply(inner, RenderToString(body, inner));
        At(frame);
        output.Append(PyText.Str(result));
        return Flow.Normal;
    }
}

/// <summary><c>{% with a = x, b = y %}body{% endwith %}</c>: the values, evaluated outside, bound in a new scope.</summary>
internal sealed class WithStmt(SourcePosition position, IReadOnlyList<(AssignTarget Target, Expr Value)> bindings, IReadOnlyList<Stmt> body) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        foreach ((_, Expr value) in bindings) value.Analyze(current);
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, s =>
        {
            foreach ((AssignTarget target, _) in bindings) target.Analyze(s, asParameter: true);
        }, body));
    }

    public override Flow Render(Frame frame, StringBuilder output)
    {
        var values = new object?[bindings.Count];
        for (int i = 0; i < bindings.Count; i++) values[i] = bindings[i].Value.Evaluate(frame);
        Frame inner = frame.Child(_bodyUndefined);
        At(frame);
        for (int i = 0; i < bindings.Count; i++) bindings[i].Target.Assign(inner, values[i]);
        return RenderBody(body, inner, output);
    }
}

/// <summary>A body in its own scope: transformers' <c>{% generation %}...{% endgeneration %}</c> (which only marks assistant text).</summary>
internal sealed class ScopeStmt(SourcePosition position, IReadOnlyList<Stmt> body) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested) =>
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, _ => { }, body));

    public override Flow Render(Frame frame, StringBuilder output) => RenderBody(body, frame.Child(_bodyUndefined), output);
}

/// <summary><c>{% break %}</c> / <c>{% continue %}</c> (Jinja's loopcontrols extension, which transformers enables from 4.45).</summary>
internal sealed class LoopControlStmt(SourcePosition position, Flow flow) : Stmt(position)
{
    public override Flow Render(Frame frame, StringBuilder output) => flow;
}
