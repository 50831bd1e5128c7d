using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>A list literal <c>[a, b]</c>.</summary>
internal sealed class ListExpr(SourcePosition position, IReadOnlyList<Expr> items) : Expr(position)
{
    public IReadOnlyList<Expr> Items { get; } = items;

    public override object? Evaluate(Frame frame)
    {
        var values = new List<object?>(Items.Count);
        foreach (Expr item in Items) values.Add(item.Evaluate(frame));
        return new PyList(values);
    }

    public override void Analyze(Symbols symbols)
    {
        foreach (Expr item in Items) item.Analyze(symbols);
    }

    public override bool MayFold => Items.All(i => i.MayFold);
}

/// <summary>A tuple <c>(a, b)</c> or <c>a, b</c>; also an assignment target such as <c>k, v</c>.</summary>
internal sealed class TupleExpr(SourcePosition position, IReadOnlyList<Expr> items) : Expr(position)
{
    public IReadOnlyList<Expr> Items { get; } = items;

    public override object? Evaluate(Frame frame)
    {
        if (Items.Count == 0) return PyList.EmptyTuple;
        var values = new List<object?>(Items.Count);
        foreach (Expr item in Items) values.Add(item.Evaluate(frame));
        return new PyList(values, isTuple: true);
    }

    public override void Analyze(Symbols symbols)
    {
        foreach (Expr item in Items) item.Analyze(symbols);
    }

    public override bool MayFold => Items.All(i => i.MayFold);
}

/// <summary>A dict literal <c>{'a': 1}</c>.</summary>
internal sealed class DictExpr(SourcePosition position, IReadOnlyList<(Expr Key, Expr Value)> pairs) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        var dict = new PyDict();
        foreach ((Expr key, Expr value) in pairs)
        {
            object? k = key.Evaluate(frame);
            object? v = value.Evaluate(frame);
            At(frame);
            dict.Set(k, v);
        }
        return dict;
    }

    public override void Analyze(Symbols symbols)
    {
        foreach ((Expr key, Expr value) in pairs)
        {
            key.Analyze(symbols);
            value.Analyze(symbols);
        }
    }

    public override bool MayFold => pairs.All(p => p.Key.MayFold && p.Value.MayFold);
}
