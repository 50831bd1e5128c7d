using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Library;

/// <summary>A filter: <c>value|name(args)</c>.</summary>
internal delegate object? FilterFunction(RenderContext context, object? value, CallArguments arguments);
