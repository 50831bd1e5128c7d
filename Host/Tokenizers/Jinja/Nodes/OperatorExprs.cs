using System.Text;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>The arithmetic operators.</summary>
internal enum BinaryOperator
{
    Add,
    Subtract,
    Multiply,
    Divide,
    FloorDivide,
    Modulo,
    Power,
}

/// <summary><c>a + b</c>, <c>a - b</c>, <c>a * b</c>, <c>a / b</c>, <c>a // b</c>, <c>a % b</c>, <c>a ** b</c> with Python's semantics.</summary>
internal sealed class BinaryExpr(SourcePosition position, BinaryOperator op, Expr left, Expr right) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? a = left.Evaluate(frame);
        object? b = right.Evaluate(frame);
        At(frame);
        return op switch
        {
            BinaryOperator.Add => PyArithmetic.Add(a, b),
            BinaryOperator.Subtract => PyArithmetic.Subtract(a, b),
            BinaryOperator.Multiply => PyArithmetic.Multiply(a, b),
            BinaryOperator.Divide => PyArithmetic.Divide(a, b),
            BinaryOperator.FloorDivide => PyArithmetic.FloorDivide(a, b),
            BinaryOperator.Modulo => PyArithmetic.Modulo(a, b),
            _ => PyArithmetic.Power(a, b),
        };
    }

    public override void Analyze(Symbols symbols)
    {
        left.Analyze(symbols);
        right.Analyze(symbols);
    }

    public override bool MayFold => left.MayFold && right.MayFold;
}

/// <summary>The unary operators.</summary>
internal enum UnaryOperator
{
    Not,
    Negate,
    Plus,
}

/// <summary><c>not x</c>, <c>-x</c>, <c>+x</c>.</summary>
internal sealed class UnaryExpr(SourcePosition position, UnaryOperator op, Expr operand) : Expr(position)
{
    public UnaryOperator Operator { get; } = op;

    public Expr Operand { get; } = operand;

    public override object? Evaluate(Frame frame)
    {
        object? v = Operand.Evaluate(frame);
        At(frame);
        return Operator switch
        {
            UnaryOperator.Not => !PyTypes.Truthy(v),
            UnaryOperator.Negate => PyArithmetic.Negate(v),
            _ => PyArithmetic.Plus(v),
        };
    }

    public override void Analyze(Symbols symbols) => Operand.Analyze(symbols);

    public override bool MayFold => Operand.MayFold;
}

/// <summary><c>a ~ b ~ c</c>: the str() of each operand joined (Undefined is "").</summary>
internal sealed class ConcatExpr(SourcePosition position, IReadOnlyList<Expr> parts) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        var sb = new StringBuilder();
        foreach (Expr part in parts)
        {
            object? v = part.Evaluate(frame);
            At(frame);
            sb.Append(PyText.Str(v));
        }
        return sb.ToString();
    }

    public override void Analyze(Symbols symbols)
    {
        foreach (Expr part in parts) part.Analyze(symbols);
    }

    public override bool MayFold => parts.All(p => p.MayFold);
}

/// <summary><c>a and b</c> / <c>a or b</c>: Python's short-circuit, giving one of the operands (not a bool).</summary>
internal sealed class LogicalExpr(SourcePosition position, bool isAnd, Expr left, Expr right) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? a = left.Evaluate(frame);
        return PyTypes.Truthy(a) == isAnd ? right.Evaluate(frame) : a;
    }

    public override void Analyze(Symbols symbols)
    {
        left.Analyze(symbols);
        right.Analyze(symbols);
    }

    // Evaluated lazily: a constant first operand may decide alone.
    public override bool MayFold => left.MayFold;
}

/// <summary><c>then if test else otherwise</c>; without an else the result is Undefined.</summary>
internal sealed class ConditionalExpr(SourcePosition position, Expr test, Expr then, Expr? otherwise) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        if (PyTypes.Truthy(test.Evaluate(frame))) return then.Evaluate(frame);
        return otherwise is not null
            ? otherwise.Evaluate(frame)
            : Undefined.WithHint($"the inline if-expression on line {Position.Line} evaluated to false and no else section was defined.");
    }

    public override void Analyze(Symbols symbols)
    {
        test.Analyze(symbols);
        then.Analyze(symbols);
        otherwise?.Analyze(symbols);
    }

    public override bool MayFold => test.MayFold;
}
