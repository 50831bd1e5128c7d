using PeftHost.Tokenizers.Jinja.Library;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>
/// <c>input|name(args)</c>. The filter is resolved when parsing (an unknown filter is a syntax error, as in
/// Jinja). In a filter block or block set the innermost input is null: the rendered body goes there.
/// </summary>
internal sealed class FilterExpr(SourcePosition position, Expr? input, string name, FilterFunction filter, ArgumentList arguments) : Expr(position)
{
    public string Name { get; } = name;

    public override object? Evaluate(Frame frame) => Apply(frame, null);

    /// <summary>Applies the chain; <paramref name="blockValue"/> stands for the missing innermost input.</summary>
    public object? Apply(Frame frame, object? blockValue)
    {
        if (frame.Context.FoldingConstants && (input is null || Library.Filters.NeedContext.Contains(Name))) throw new NotConstantException();
        object? value = input switch
        {
            null => blockValue,
            FilterExpr inner => inner.Apply(frame, blockValue),
            _ => input.Evaluate(frame),
        };
        CallArguments args = arguments.Evaluate(frame);
        At(frame);
        return filter(frame.Context, value, args);
    }

    public override bool MayFold => input is not null && input.MayFold && arguments.MayFold && !Library.Filters.NeedContext.Contains(Name);

    public override void Analyze(Symbols symbols)
    {
        input?.Analyze(symbols);
        arguments.Analyze(symbols);
    }
}
