using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>An expression of the syntax tree; evaluating it gives a template value.</summary>
internal abstract class Expr(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    public abstract object? Evaluate(Frame frame);

    /// <summary>
    /// Whether Jinja could compute this when compiling (its as_const): no variable, call or context filter is
    /// reached; inline if, and, or need only their first operand to qualify. The parser then tries to fold it.
    /// </summary>
    public virtual bool MayFold => false;

    /// <summary>Records the names this expression reads (for <see cref="Symbols"/>).</summary>
    public virtual void Analyze(Symbols symbols)
    {
    }

    /// <summary>Marks this node as the one being evaluated, so that an error in its operation names its position.</summary>
    protected void At(Frame frame) => frame.Context.Position = Position;
}
