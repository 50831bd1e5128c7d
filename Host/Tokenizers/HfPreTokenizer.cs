using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>
/// tokenizer.json's <c>pre_tokenizer</c>: splits normalized text into words before BPE
/// (ByteLevel for GPT-2, Split + ByteLevel for Llama 3 / Qwen2, Metaspace for SentencePiece files).
/// </summary>
internal sealed partial class HfPreTokenizer
{
    /// <summary>GPT-2's word pattern, used by the ByteLevel pre-tokenizer when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly List<Func<List<string>, bool, List<string>>> _steps = [];

    private HfPreTokenizer()
    {
    }

    /// <summary>True when a ByteLevel step maps the words to GPT-2's byte alphabet.</summary>
    public bool IsByteLevel { get; private set; }

    public List<string> PreTokenize(string text, bool atStartOfInput)
    {
        var pieces = new List<string> { text };
        foreach (Func<List<string>, bool, List<string>> step in _steps)
        {
            pieces = step(pieces, atStartOfInput);
        }

        return pieces;
    }

    public static HfPreTokenizer Read(JsonFields f)
    {
        var p = new HfPreTokenizer();
        p.Add(f);
        return p;
    }

    private void Add(JsonFields f)
    {
        string type = f.RequiredString("type");
        switch (type)
        {
            case "Sequence":
                foreach (JsonFields child in f.Required("pretokenizers").Items())
                {
                    Add(child);
                }

                break;
            case "ByteLevel":
                AddByteLevel(f.OptionalBool("add_prefix_space", true), f.OptionalBool("use_regex", true));
                break;
            case "Split":
                AddSplit(f);
                break;
            case "Metaspace":
                AddMetaspace(f);
                break;
            case "Whitespace":
                Regex words = WhitespaceRegex();
                _steps.Add((pieces, _) => pieces.SelectMany(s => SplitByRegex(s, words, SplitBehavior.Isolated, invert: false).Where(x => !string.IsNullOrWhiteSpace(x))).ToList());
                break;
            case "WhitespaceSplit":
                _steps.Add((pieces, _) => pieces.SelectMany(s => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList());
                break;
            case "Digits":
                Regex digits = f.OptionalBool("individual_digits", false) ? SingleDigitRegex() : DigitRunRegex();
                _steps.Add((pieces, _) => pieces.SelectMany(s => SplitByRegex(s, digits, SplitBehavior.Isolated, invert: false)).ToList());
                break;
            default:
                throw f.Error("type", $"pre-tokenizer '{type}' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit, Digits).");
        }
    }

    private void AddByteLevel(bool addPrefixSpace, bool useRegex)
    {
        IsByteLevel = true;
        Regex gpt2 = Gpt2Regex();
        _steps.Add((pieces, _) =>
        {
            var result = new List<string>();
            foreach (string piece in pieces)
            {
                string s = addPrefixSpace && !piece.StartsWith(' ') ? " " + piece : piece;
                IEnumerable<string> words = useRegex ? SplitByRegex(s, gpt2, SplitBehavior.Isolated, invert: false) : [s];
                result.AddRange(words.Select(ByteLevelAlphabet.Encode));
            }

            return result;
        });
    }

    private void AddSplit(JsonFields f)
    {
        JsonFields pattern = f.Required("pattern");
        Regex regex = pattern.OptionalString("Regex") is string r
            ? TokenizerRegex.Create(pattern, r)
            : pattern.OptionalString("String") is string literal
                ? new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant)
                : throw pattern.Error(null, "must have 'String' or 'Regex'.");
        string behaviorName = f.RequiredString("behavior");
        SplitBehavior behavior = behaviorName switch
        {
            "Isolated" => SplitBehavior.Isolated,
            "Removed" => SplitBehavior.Removed,
            "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
            "MergedWithNext" => SplitBehavior.MergedWithNext,
            _ => throw f.Error("behavior", $"'{behaviorName}' is not supported (supported: Isolated, Removed, MergedWithPrevious, MergedWithNext)."),
        };
        bool invert = f.OptionalBool("invert", false);
        _steps.Add((pieces, _) => pieces.SelectMany(s => SplitByRegex(s, regex, behavior, invert)).ToList());
    }

    private void AddMetaspace(JsonFields f)
    {
        string replacement = f.OptionalString("replacement") ?? "▁";
        // Older files carry add_prefix_space instead of prepend_scheme.
        string scheme = f.OptionalString("prepend_scheme") ?? (f.OptionalBool("add_prefix_space", true) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never"))
        {
            throw f.Error("prepend_scheme", $"'{scheme}' is not supported (always, first, never).");
        }

        bool split = f.OptionalBool("split", true);
        var splitter = new Regex(Regex.Escape(replacement), RegexOptions.CultureInvariant);
        _steps.Add((pieces, atStart) =>
        {
            var result = new List<string>();
            for (int i = 0; i < pieces.Count; i++)
            {
                string s = pieces[i].Replace(" ", replacement, StringComparison.Ordinal);
                bool prepend = scheme == "always" || (scheme == "first" && atStart && i == 0);
                if (prepend && s.Length > 0 && !s.StartsWith(replacement, StringComparison.Ordinal))
                {
                    s = replacement + s;
                }

                result.AddRange(split ? SplitByRegex(s, splitter, SplitBehavior.MergedWithNext, invert: false) : [s]);
            }

            return result;
        });
    }

    private enum SplitBehavior
    {
        Isolated,
        Removed,
        MergedWithPrevious,
        MergedWithNext,
    }

    private static List<string> SplitByRegex(string text, Regex regex, SplitBehavior behavior, bool invert)
    {
        // Parts alternate between matched and unmatched stretches; empty stretches are dropped.
        var parts = new List<(string Text, bool IsMatch)>();
        int last = 0;
        foreach (Match m in regex.Matches(text))
        {
            if (m.Length == 0)
            {
                continue;
            }

            if (m.Index > last)
            {
                parts.Add((text[last..m.Index], invert));
            }

            parts.Add((m.Value, !invert));
            last = m.Index + m.Length;
        }

        if (last < text.Length)
        {
            parts.Add((text[last..], invert));
        }

        var result = new List<string>();
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                result.AddRange(parts.Select(p => p.Text));
                break;
            case SplitBehavior.Removed:
                result.AddRange(parts.Where(p => !p.IsMatch).Select(p => p.Text));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach ((string t, bool isMatch) in parts)
                {
                    if (isMatch && result.Count > 0)
                    {
                        result[^1] += t;
                    }
                    else
                    {
                        result.Add(t);
                    }
                }

                break;
            case SplitBehavior.MergedWithNext:
                string pending = "";
                foreach ((string t, bool isMatch) in parts)
                {
                    if (isMatch)
                    {
                        if (pending.Length > 0)
                        {
                            result.Add(pending);
                        }

                        pending = t;
                    }
                    else
                    {
                        result.Add(pending + t);
                        pending = "";
                    }
                }

                if (pending.Length > 0)
                {
                    result.Add(pending);
                }

                break;
        }

        return result;
    }

    [GeneratedRegex(Gpt2Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Regex();

    [GeneratedRegex(@"\w+|[^\w\s]+", RegexOptions.CultureInvariant)]
    private static partial Regex WhitespaceRegex();

    [GeneratedRegex(@"\p{N}", RegexOptions.CultureInvariant)]
    private static partial Regex SingleDigitRegex();

    [GeneratedRegex(@"\p{N}+", RegexOptions.CultureInvariant)]
    private static partial Regex DigitRunRegex();
}
