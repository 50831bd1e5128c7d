using PeftHost.Tokenizers.Jinja.Library;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>value is name(args)</c> (<c>is not</c> wraps it in a not); the test is resolved when parsing.</summary>
internal sealed class TestExpr(SourcePosition position, Expr input, TestFunction test, ArgumentList arguments) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? value = input.Evaluate(frame);
        CallArguments args = arguments.Evaluate(frame);
        At(frame);
        return test(frame.Context, value, args);
    }

    public override bool MayFold => input.MayFold && arguments.MayFold;

    public override void Analyze(Symbols symbols)
    {
        input.Analyze(symbols);
        arguments.Analyze(symbols);
    }
}
