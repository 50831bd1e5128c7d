using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>The comparison operators.</summary>
internal enum CompareOperator
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    In,
    NotIn,
}

/// <summary><c>a == b</c>, <c>a &lt; b &lt; c</c> (chained as in Python), <c>a in b</c>, <c>a not in b</c>.</summary>
internal sealed class CompareExpr(SourcePosition position, Expr first, IReadOnlyList<(CompareOperator Op, Expr Operand)> rest) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? left = first.Evaluate(frame);
        foreach ((CompareOperator op, Expr operand) in rest)
        {
            object? right = operand.Evaluate(frame);
            At(frame);
            if (!Holds(op, left, right)) return false;
            left = right;
        }
        return true;
    }

    public override void Analyze(Symbols symbols)
    {
        first.Analyze(symbols);
        foreach ((_, Expr operand) in rest) operand.Analyze(symbols);
    }

    public override bool MayFold => first.MayFold && rest.All(r => r.Operand.MayFold);

    public static bool Holds(CompareOperator op, object? a, object? b) => op switch
    {
        CompareOperator.Equal => PyCompare.Equal(a, b),
        CompareOperator.NotEqual => !PyCompare.Equal(a, b),
        CompareOperator.Less => PyCompare.Less(a, b),
        CompareOperator.LessOrEqual => PyCompare.LessOrEqual(a, b),
        CompareOperator.Greater => PyCompare.Greater(a, b),
        CompareOperator.GreaterOrEqual => PyCompare.GreaterOrEqual(a, b),
        CompareOperator.In => PyAccess.Contains(b, a),
        _ => !PyAccess.Contains(b, a),
    };
}
