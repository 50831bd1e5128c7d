using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>
/// <c>{% macro name(a, b=default) %}body{% endmacro %}</c>: defines a callable that renders its body in a new
/// scope over the one it was defined in, with its parameters, <c>varargs</c>, <c>kwargs</c> and, from a call
/// block, <c>caller</c>. A parameter not passed and without default is Undefined.
/// </summary>
internal sealed class MacroStmt(SourcePosition position, string name, IReadOnlyList<string> parameters, IReadOnlyList<Expr?> defaults, IReadOnlyList<Stmt> body) : Stmt(position)
{
    private IReadOnlyList<string> _bodyUndefined = [];

    public override void Analyze(Symbols current, Symbols scope, Queue<Action> nested)
    {
        current.Store(name);
        AnalyzeBodyLater(scope, nested);
    }

    /// <summary>Queues the analysis of the macro's own scope (also for a call block's caller, which defines no name).</summary>
    public void AnalyzeBodyLater(Symbols scope, Queue<Action> nested) =>
        nested.Enqueue(() => _bodyUndefined = AnalyzeScope(scope, nested, s =>
        {
            foreach (string p in parameters) s.DeclareParameter(p);
            foreach (Expr? d in defaults) d?.Analyze(s);
        }, body));

    public override Flow Render(Frame frame, StringBuilder output)
    {
        frame.Set(name, Define(frame));
        return Flow.Normal;
    }

    /// <summary>The callable, closed over <paramref name="definition"/>.</summary>
    public PyCallable Define(Frame definition) => new(name, (context, args) => Invoke(definition, args), "Macro");

    private string Invoke(Frame definition, CallArguments args)
    {
        RenderContext context = definition.Context;
        if (context.CallDepth >= RenderContext.MaxCallDepth) throw new TemplateError(TemplateErrorKind.Recursion, $"maximum recursion depth exceeded in macro '{name}'");
        Frame frame = definition.Child(_bodyUndefined);
        var bound = new bool[parameters.Count];
        var varargs = new List<object?>();
        for (int i = 0; i < args.Positional.Count; i++)
        {
            if (i < parameters.Count)
            {
                frame.Set(parameters[i], args.Positional[i]);
                bound[i] = true;
            }
            else
            {
                varargs.Add(args.Positional[i]);
            }
        }
        var kwargs = new PyDict();
        foreach ((string key, object? value) in args.Keywords)
        {
            int at = IndexOf(key);
            if (at >= 0)
            {
                if (bound[at]) throw TemplateError.Type($"macro '{name}' got multiple values for argument '{key}'");
                frame.Set(key, value);
                bound[at] = true;
            }
            else if (key == "caller")
            {
                frame.Set("caller", value);
            }
            else
            {
                kwargs.Set(key, value);
            }
        }
        for (int i = 0; i < parameters.Count; i++)
        {
            if (bound[i]) continue;
            // Defaults are evaluated at call time, in the macro's scope (they may use earlier parameters).
            frame.Set(parameters[i], defaults[i] is Expr d ? d.Evaluate(frame) : Undefined.WithHint($"parameter '{parameters[i]}' was not provided"));
        }
        frame.Set("varargs", new PyList(varargs, isTuple: true));
        frame.Set("kwargs", kwargs);
        context.CallDepth++;
        try
        {
            return RenderToString(body, frame);
        }
        finally
        {
            context.CallDepth--;
        }
    }

    private int IndexOf(string parameter)
    {
        for (int i = 0; i < parameters.Count; i++)
        {
            if (parameters[i] == parameter) return i;
        }
        return -1;
    }
}
