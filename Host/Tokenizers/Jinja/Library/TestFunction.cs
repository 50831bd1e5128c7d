using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Library;

/// <summary>A test: <c>value is name(args)</c>.</summary>
internal delegate bool TestFunction(RenderContext context, object? value, CallArguments arguments);
