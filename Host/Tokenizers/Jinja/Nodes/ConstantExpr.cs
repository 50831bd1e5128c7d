using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>A literal: a string, a number, true/false or none.</summary>
internal sealed class ConstantExpr(SourcePosition position, object? value) : Expr(position)
{
    public object? Value { get; } = value;

    public override object? Evaluate(Frame frame) => Value;

    public override bool MayFold => true;
}
