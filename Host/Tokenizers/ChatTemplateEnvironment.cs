using PeftHost.Tokenizers.Jinja;
using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers;

/// <summary>
/// The Jinja environment transformers renders chat templates in (tokenization_utils_base's
/// _compile_jinja_template): an immutable sandbox with trim_blocks and lstrip_blocks, the
/// <c>{% generation %}</c> tag, tojson as plain json.dumps (ensure_ascii off, keys unsorted, not Jinja's
/// HTML-safe variant) and raise_exception; plus what transformers added in 4.45: strftime_now and the
/// loopcontrols extension (<c>{% break %}</c>, <c>{% continue %}</c>).
/// </summary>
internal static class ChatTemplateEnvironment
{
    public static JinjaEnvironment Instance { get; } = Create();

    private static JinjaEnvironment Create()
    {
        var env = new JinjaEnvironment { TrimBlocks = true, LstripBlocks = true, LoopControls = true, GenerationTag = true };
        env.Filters["tojson"] = ToJson;
        env.Globals["raise_exception"] = new PyCallable("raise_exception", RaiseException, "function");
        env.Globals["strftime_now"] = new PyCallable("strftime_now", StrftimeNow, "function");
        return env;
    }

    // tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> json.dumps(x, ...)
    private static object? ToJson(RenderContext context, object? value, CallArguments args)
    {
        object?[] p = args.Bind("tojson", 0, "ensure_ascii", "indent", "separators", "sort_keys");
        string? itemSeparator = null, keySeparator = null;
        object? separators = CallArguments.Or<object?>(p[2], null);
        if (separators is not null)
        {
            IReadOnlyList<object?> pair = PyAccess.ToList(separators);
            if (pair.Count != 2 || pair[0] is not string item || pair[1] is not string key)
                throw TemplateError.Value("separators must be an (item_separator, key_separator) pair of strings");
            (itemSeparator, keySeparator) = (item, key);
        }
        return PyJson.Dumps(value, new PyJsonOptions
        {
            EnsureAscii = PyTypes.Truthy(CallArguments.Or<object?>(p[0], false)),
            Indent = Jinja.Library.Filters.JsonIndent(CallArguments.Or<object?>(p[1], null)),
            ItemSeparator = itemSeparator,
            KeySeparator = keySeparator,
            SortKeys = PyTypes.Truthy(CallArguments.Or<object?>(p[3], false)),
        });
    }

    // raise_exception(message): raise TemplateError(message)
    private static object? RaiseException(RenderContext context, CallArguments args) =>
        throw new TemplateError(TemplateErrorKind.Raised, PyText.Str(args.Bind("raise_exception", 1, "message")[0]));

    // strftime_now(format): datetime.now().strftime(format), on the render's clock
    private static object? StrftimeNow(RenderContext context, CallArguments args)
    {
        object? format = args.Bind("strftime_now", 1, "format")[0];
        if (format is not string f) throw TemplateError.Type($"strftime() argument 1 must be str, not {PyTypes.TypeName(format)}");
        return PyStrftime.Format(context.Clock.GetLocalNow().DateTime, f);
    }
}
