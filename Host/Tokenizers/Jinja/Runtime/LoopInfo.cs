namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>The <c>loop</c> variable of a for loop: index, index0, revindex, first, last, length, previtem, cycle, ...</summary>
internal sealed class LoopInfo(IReadOnlyList<object?> items, int depth0)
{
    private static readonly object NotYet = new();
    private object? _lastChanged = NotYet;

    public int Index0 { get; set; }

    public int Length => items.Count;

    public object? GetAttribute(string name) => name switch
    {
        "index" => (long)(Index0 + 1),
        "index0" => (long)Index0,
        "revindex" => (long)(Length - Index0),
        "revindex0" => (long)(Length - Index0 - 1),
        "first" => Index0 == 0,
        "last" => Index0 == Length - 1,
        "length" => (long)Length,
        "depth" => (long)(depth0 + 1),
        "depth0" => (long)depth0,
        "previtem" => Index0 > 0 ? items[Index0 - 1] : Undefined.WithHint("there is no previous item"),
        "nextitem" => Index0 + 1 < Length ? items[Index0 + 1] : Undefined.WithHint("there is no next item"),
        "cycle" => new PyCallable("cycle", Cycle, "method"),
        "changed" => new PyCallable("changed", Changed, "method"),
        _ => Undefined.ForMember(this, name),
    };

    private object? Cycle(RenderContext context, CallArguments args)
    {
        args.NoKeywords("cycle");
        if (args.Positional.Count == 0) throw TemplateError.Type("no items for cycling given");
        return args.Positional[Index0 % args.Positional.Count];
    }

    private object? Changed(RenderContext context, CallArguments args)
    {
        args.NoKeywords("changed");
        var value = new PyList([.. args.Positional], isTuple: true);
        if (!ReferenceEquals(_lastChanged, NotYet) && PyCompare.Equal(_lastChanged, value)) return false;
        _lastChanged = value;
        return true;
    }
}
