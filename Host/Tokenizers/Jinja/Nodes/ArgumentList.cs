using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Nodes;

/// <summary>The arguments written in a call, filter or test: positional, keyword, <c>*args</c> and <c>**kwargs</c>.</summary>
internal sealed class ArgumentList(IReadOnlyList<Expr> positional, IReadOnlyList<(string Name, Expr Value)> keywords, Expr? starArgs, Expr? starKwargs)
{
    public static ArgumentList Empty { get; } = new([], [], null, null);

    public bool IsEmpty => positional.Count == 0 && keywords.Count == 0 && starArgs is null && starKwargs is null;

    public bool MayFold => positional.All(e => e.MayFold) && keywords.All(k => k.Value.MayFold)
        && (starArgs?.MayFold ?? true) && (starKwargs?.MayFold ?? true);

    public void Analyze(Symbols symbols)
    {
        foreach (Expr e in positional) e.Analyze(symbols);
        foreach ((_, Expr e) in keywords) e.Analyze(symbols);
        starArgs?.Analyze(symbols);
        starKwargs?.Analyze(symbols);
    }

    public CallArguments Evaluate(Frame frame, (string Name, object? Value)? extraKeyword = null)
    {
        if (IsEmpty && extraKeyword is null) return CallArguments.None;
        var args = new List<object?>(positional.Count);
        foreach (Expr e in positional) args.Add(e.Evaluate(frame));
        if (starArgs is not null) args.AddRange(PyAccess.Iterate(starArgs.Evaluate(frame)));
        var kwargs = new List<KeyValuePair<string, object?>>(keywords.Count);
        foreach ((string name, Expr value) in keywords) kwargs.Add(new(name, value.Evaluate(frame)));
        if (starKwargs is not null)
        {
            object? mapping = starKwargs.Evaluate(frame);
            if (mapping is not PyDict dict) throw TemplateError.Type($"argument after ** must be a mapping, not {PyTypes.TypeName(mapping)}");
            foreach ((object? k, object? v) in dict.Items)
            {
                if (k is not string key) throw TemplateError.Type("keywords must be strings");
                kwargs.Add(new(key, v));
            }
        }
        if (extraKeyword is { } extra) kwargs.Add(new(extra.Name, extra.Value));
        return new CallArguments(args, kwargs);
    }
}
