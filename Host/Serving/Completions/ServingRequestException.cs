namespace PeftHost.Serving.Completions;

/// <summary>
/// A request the server refuses, with what OpenAI's error object says about it: the HTTP status, the error's
/// type and code, and the request field at fault (<c>param</c>). An <see cref="ArgumentException"/>, so the
/// in-process client's callers see an input error.
/// </summary>
public sealed class ServingRequestException : ArgumentException
{
    /// <summary>A refusal of the request.</summary>
    /// <param name="message">What is wrong and what was expected.</param>
    /// <param name="param">The request field at fault, or null.</param>
    /// <param name="code">OpenAI's error code (e.g. <c>unsupported</c>, <c>context_length_exceeded</c>), or null.</param>
    /// <param name="status">The HTTP status (400 unless said otherwise).</param>
    public ServingRequestException(string message, string? param = null, string? code = null, int status = 400) : base(message)
    {
        Param = param;
        Code = code;
        Status = status;
    }

    /// <summary>The request field at fault.</summary>
    public string? Param { get; }

    /// <summary>The request field at fault (kept out of <see cref="Exception.Message"/>, which is the error object's message).</summary>
    public override string? ParamName => Param;

    /// <summary>OpenAI's error code.</summary>
    public string? Code { get; }

    /// <summary>The HTTP status.</summary>
    public int Status { get; }

    /// <summary>A parameter the server does not implement (answered 400 <c>unsupported</c>).</summary>
    public static ServingRequestException Unsupported(string param, string what) => new($"Unsupported parameter: {what}.", param, "unsupported");
}
