using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary><c>obj.name</c>: the Python attribute (a method) first, then the item.</summary>
internal sealed class AttributeExpr(SourcePosition position, Expr target, string name) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? obj = target.Evaluate(frame);
        At(frame);
        return PyAccess.GetAttribute(obj, name);
    }

    public override void Analyze(Symbols symbols) => target.Analyze(symbols);

    public override bool MayFold => target.MayFold;
}

/// <summary><c>obj[key]</c> (the item first, then the attribute) or, with a <see cref="SliceExpr"/> key, <c>obj[a:b:c]</c>.</summary>
internal sealed class ItemExpr(SourcePosition position, Expr target, Expr key) : Expr(position)
{
    public override object? Evaluate(Frame frame)
    {
        object? obj = target.Evaluate(frame);
        if (key is SliceExpr slice)
        {
            object? start = slice.Start?.Evaluate(frame);
            object? stop = slice.Stop?.Evaluate(frame);
            object? step = slice.Step?.Evaluate(frame);
            At(frame);
            try
            {
                return PyAccess.Slice(obj, start, stop, step);
            }
            catch (TemplateError e) when (frame.Context.FoldingConstants && e.Kind == TemplateErrorKind.Type)
            {
                // Jinja computes a printed expression of literals when compiling, subscripts through its
                // getitem: there a failing slice is Undefined instead of Python's TypeError.
                return Undefined.ForMember(obj, "slice");
            }
        }
        object? k = key.Evaluate(frame);
        At(frame);
        return PyAccess.GetItem(obj, k);
    }

    public override void Analyze(Symbols symbols)
    {
        target.Analyze(symbols);
        key.Analyze(symbols);
    }

    public override bool MayFold => target.MayFold && key.MayFold;
}

/// <summary>The <c>a:b:c</c> inside brackets; evaluated by the <see cref="ItemExpr"/> that holds it.</summary>
internal sealed class SliceExpr(SourcePosition position, Expr? start, Expr? stop, Expr? step) : Expr(position)
{
    public Expr? Start { get; } = start;

    public Expr? Stop { get; } = stop;

    public Expr? Step { get; } = step;

    public override object? Evaluate(Frame frame) => throw new InvalidOperationException("A slice is evaluated by the subscript that holds it.");

    public override void Analyze(Symbols symbols)
    {
        Start?.Analyze(symbols);
        Stop?.Analyze(symbols);
        Step?.Analyze(symbols);
    }

    public override bool MayFold => (Start?.MayFold ?? true) && (Stop?.MayFold ?? true) && (Step?.MayFold ?? true);
}
