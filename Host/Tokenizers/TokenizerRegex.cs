using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>
/// Regular expressions that come from a tokenizer file (Split pre-tokenizers, Replace normalizers and decoders):
/// compiled with a match timeout, since a hostile pattern can backtrack for ever on a short text.
/// </summary>
internal static class TokenizerRegex
{
    /// <summary>How long one match may run before <see cref="RegexMatchTimeoutException"/> ends it.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(1);

    /// <summary>The pattern at <paramref name="field"/> (the JSON field holding the pattern) as a .NET regex.</summary>
    /// <exception cref="TokenizerLoadException">The pattern is not one .NET can compile; the message names the field.</exception>
    public static Regex Create(JsonFields field, string pattern)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant, MatchTimeout);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerLoadException(field.FilePath, field.Child("Regex"), $"the regular expression is not supported by .NET ({e.Message}).", e);
        }
    }
}
