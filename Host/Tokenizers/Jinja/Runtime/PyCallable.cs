namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>A builtin, bound method, macro or caller: something a template can call.</summary>
internal delegate object? PyFunction(RenderContext context, CallArguments arguments);

/// <summary>A callable value: a global function, a method bound to its object, a macro, a call block's caller.</summary>
internal sealed class PyCallable(string name, PyFunction function, string typeName = "builtin_function_or_method")
{
    public string Name { get; } = name;

    public string TypeName { get; } = typeName;

    public object? Invoke(RenderContext context, CallArguments arguments) => function(context, arguments);
}
