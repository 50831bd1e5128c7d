namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>The positional and keyword arguments of one call, with Python's binding rules for builtins.</summary>
internal sealed class CallArguments(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> keywords)
{
    public static CallArguments None { get; } = new([], []);

    public IReadOnlyList<object?> Positional { get; } = positional;

    public IReadOnlyList<KeyValuePair<string, object?>> Keywords { get; } = keywords;

    /// <summary>
    /// Binds the arguments to a builtin's parameters: <paramref name="names"/> in order, the first
    /// <paramref name="required"/> of them mandatory. Missing optional ones are <see cref="Missing"/>.
    /// </summary>
    public object?[] Bind(string function, int required, params string[] names)
    {
        if (Positional.Count > names.Length)
            throw TemplateError.Type($"{function}() takes at most {names.Length} argument{(names.Length == 1 ? "" : "s")} ({Positional.Count} given)");
        var bound = new object?[names.Length];
        Array.Fill(bound, Missing);
        for (int i = 0; i < Positional.Count; i++) bound[i] = Positional[i];
        foreach ((string key, object? value) in Keywords)
        {
            int at = Array.IndexOf(names, key);
            if (at < 0) throw TemplateError.Type($"{function}() got an unexpected keyword argument {PyText.Repr(key)}");
            if (!ReferenceEquals(bound[at], Missing)) throw TemplateError.Type($"{function}() got multiple values for argument {PyText.Repr(key)}");
            bound[at] = value;
        }
        for (int i = 0; i < required; i++)
        {
            if (ReferenceEquals(bound[i], Missing)) throw TemplateError.Type($"{function}() missing required argument {PyText.Repr(names[i])}");
        }
        return bound;
    }

    /// <summary>Refuses any keyword argument (for builtins that take positional arguments only).</summary>
    public void NoKeywords(string function)
    {
        if (Keywords.Count > 0) throw TemplateError.Type($"{function}() takes no keyword arguments");
    }

    /// <summary>Marks a parameter that was not passed.</summary>
    public static readonly object Missing = new();

    public static T Or<T>(object? bound, T fallback) => ReferenceEquals(bound, Missing) ? fallback : (T)bound!;

    public static bool IsMissing(object? bound) => ReferenceEquals(bound, Missing);
}
