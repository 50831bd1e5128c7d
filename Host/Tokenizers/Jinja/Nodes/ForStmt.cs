using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>
/// <c>{% for target in iterable if filter %}...{% else %}...{% endfor %}</c>. Each iteration has its own
/// scope (a set inside the body is gone at the next iteration, as in Jinja) with <c>loop</c>; the filter
/// decides which items count, so loop.length and loop.last see only those; else renders when none do.
/// </summary>
internal sealed class ForStmt(SourcePosition position, AssignTarget target, Expr iterable, Expr? filter, IReadOnlyList<Stmt> body, IReadOnlyList<Stmt> otherwise) : Stmt(position)
{
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
                if (PyTypes.Truthy(filter.Evaluate(test))) kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0) return RenderBody(otherwise, frame.Child(), output);
        var loop = new LoopInfo(items, depth0: 0);
        for (int i = 0; i < items.Count; i++)
        {
            loop.Index0 = i;
            Frame iteration = frame.Child();
            At(frame);
            target.Assign(iteration, items[i]);
            iteration.Set("loop", loop);
            if (RenderBody(body, iteration, output) == Flow.Break) break;
        }
        return Flow.Normal;
    }
}
