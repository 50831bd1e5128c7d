using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>f(args)</c>: a global such as range or namespace, a method such as <c>content.strip()</c>, a macro.</summary>
internal sealed class CallExpr(SourcePosition position, Expr callee, ArgumentList arguments) : Expr(position)
{
    public override object? Evaluate(Frame frame) => EvaluateWith(frame, null);

    /// <summary>Calls with one more keyword argument (a call block passes its body as <c>caller</c>).</summary>
    public object? EvaluateWith(Frame frame, (string Name, object? Value)? extraKeyword)
    {
        if (frame.Context.FoldingConstants) throw new NotConstantException();
        object? function = callee.Evaluate(frame);
        CallArguments args = arguments.Evaluate(frame, extraKeyword);
        At(frame);
        return PyAccess.Call(frame.Context, function, args);
    }

    public override void Analyze(Symbols symbols)
    {
        callee.Analyze(symbols);
        arguments.Analyze(symbols);
    }
}
