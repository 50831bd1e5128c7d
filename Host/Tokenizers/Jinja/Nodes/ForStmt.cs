using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>
/// <c>{% for target in iterable if filter %}...{% else %}...{% endfor %}</c>. Each iteration has its own
/// scope (a set inside the body is gone at the next iteration, as in Jinja) with <c>loop</c>; the filter
/// decides which items count, so loop.length and loop.last see only those. The else block renders when no
/// iteration ran to its end: none at all, or (as Jinja compiles it) every one left by break or continue
/// before any ended normally.
/// </summary>
internal sealed class ForStmt(SourcePosition position, AssignTarget target, Expr iterable, Expr? filter, IReadOnlyList<Stmt> body, IReadOnlyList<Stmt> otherwise) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];
    private IReadOnlyList<string> _elseUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        iterable.Analyze(current);
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, s =>
        {
            s.DeclareParameter("loop");
            target.Analyze(s, asParameter: true);
        }, body));
        nested.Enqueue(() => _elseUndefined = AnalyzeScope(scope, nested, _ => { }, otherwise));
    }

    public override Flow Render(Frame frame, StringBuilder output)
    {
        object? source = iterable.Evaluate(frame);
        At(frame);
        IReadOnlyList<object?> items = PyAccess.ToList(source);
        if (filter is not null)
        {
            var kept = new List<object?>();
            foreach (object? item in items)
            {
                Frame test = frame.Child();
                target.Assign(test, item);
                // Jinja filters through a generator that yields the target: unpacked items come back as tuples.
                if (PyTypes.Truthy(filter.Evaluate(test))) kept.Add(target is NameTarget ? item : target.Repack(test));
            }
            items = kept;
        }
        var loop = new LoopInfo(items, depth0: 0);
        bool anyCompleted = false;
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            Frame iteration = frame.Child(_bodyUndefined);
            At(frame);
            target.Assign(iteration, items[i]);
            iteration.Set("loop", loop);
            Flow flow = RenderBody(body, iteration, output);
            if (flow == Flow.Normal) anyCompleted = true;
            else if (flow == Flow.Break) break;
        }
        return anyCompleted ? Flow.Normal : RenderBody(otherwise, frame.Child(_elseUndefined), output);
    }
}
