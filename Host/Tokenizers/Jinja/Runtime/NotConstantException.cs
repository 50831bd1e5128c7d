namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Raised while folding constants (<see cref="RenderContext.FoldingConstants"/>) by what Jinja cannot compute
/// when compiling: a variable, a call, a filter that needs the render context (Jinja's Impossible).
/// </summary>
internal sealed class NotConstantException() : Exception("not a constant expression");
