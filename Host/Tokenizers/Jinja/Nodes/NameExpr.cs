using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>A variable: looked up through the scopes, the render variables and the globals; Undefined when missing.</summary>
internal sealed class NameExpr(SourcePosition position, string name) : Expr(position)
{
    public string Name { get; } = name;

    public override object? Evaluate(Frame frame) =>
        frame.Context.FoldingConstants ? throw new NotConstantException() : frame.Lookup(Name);

    public override void Analyze(Symbols symbols) => symbols.Load(Name);
}
