using System.Text;
using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>tokenizer.json's <c>normalizer</c>: the steps Llama 2 / Mistral and most BPE files use.</summary>
internal sealed class HfNormalizer
{
    private readonly List<Func<string, string>> _steps = [];

    private HfNormalizer()
    {
    }

    public string Normalize(string text)
    {
        foreach (Func<string, string> step in _steps)
        {
            text = step(text);
        }

        return text;
    }

    public static HfNormalizer Read(JsonFields f)
    {
        var n = new HfNormalizer();
        n.Add(f);
        return n;
    }

    private void Add(JsonFields f)
    {
        string type = f.RequiredString("type");
        switch (type)
        {
            case "Sequence":
                foreach (JsonFields child in f.Required("normalizers").Items())
                {
                    Add(child);
                }

                break;
            case "Prepend":
                string prepend = f.RequiredString("prepend");
                // Hugging Face prepends only to non-empty text.
                _steps.Add(s => s.Length == 0 ? s : prepend + s);
                break;
            case "Replace":
                _steps.Add(ReadReplace(f));
                break;
            case "NFC":
                _steps.Add(s => s.Normalize(NormalizationForm.FormC));
                break;
            case "NFD":
                _steps.Add(s => s.Normalize(NormalizationForm.FormD));
                break;
            case "NFKC":
                _steps.Add(s => s.Normalize(NormalizationForm.FormKC));
                break;
            case "NFKD":
                _steps.Add(s => s.Normalize(NormalizationForm.FormKD));
                break;
            case "Lowercase":
                _steps.Add(s => s.ToLowerInvariant());
                break;
            case "Strip":
                bool left = f.OptionalBool("strip_left", true);
                bool right = f.OptionalBool("strip_right", true);
                _steps.Add(s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s);
                break;
            default:
                throw f.Error("type", $"normalizer '{type}' is not supported (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip).");
        }
    }

    /// <summary>Reads a Replace step (shared with the Replace decoder).</summary>
    public static Func<string, string> ReadReplace(JsonFields f)
    {
        JsonFields pattern = f.Required("pattern");
        string content = f.RequiredString("content");
        if (pattern.OptionalString("String") is string literal)
        {
            if (literal.Length == 0)
            {
                throw pattern.Error("String", "is empty: a Replace needs text to find.");
            }

            return s => s.Replace(literal, content, StringComparison.Ordinal);
        }

        if (pattern.OptionalString("Regex") is string regex)
        {
            Regex r = TokenizerRegex.Create(pattern, regex);
            return s => r.Replace(s, content.Replace("$", "$$", StringComparison.Ordinal));
        }

        throw pattern.Error(null, "must have 'String' or 'Regex'.");
    }
}
