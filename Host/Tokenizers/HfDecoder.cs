using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers;

/// <summary>
/// tokenizer.json's <c>decoder</c>: turns token strings back into text (ByteLevel for GPT-2 style files;
/// Replace, ByteFallback, Fuse, Strip or Metaspace for SentencePiece style files).
/// </summary>
internal sealed class HfDecoder
{
    private readonly List<Func<List<string>, List<string>>> _steps = [];

    private HfDecoder()
    {
    }

    public string Decode(List<string> tokens)
    {
        foreach (Func<List<string>, List<string>> step in _steps)
        {
            tokens = step(tokens);
        }

        return string.Concat(tokens);
    }

    public static HfDecoder Read(JsonFields f)
    {
        var d = new HfDecoder();
        d.Add(f);
        return d;
    }

    private void Add(JsonFields f)
    {
        string type = f.RequiredString("type");
        switch (type)
        {
            case "Sequence":
                foreach (JsonFields child in f.Required("decoders").Items())
                {
                    Add(child);
                }

                break;
            case "ByteLevel":
                _steps.Add(tokens =>
                {
                    var bytes = new List<byte>();
                    foreach (string t in tokens)
                    {
                        ByteLevelAlphabet.AppendBytes(t, bytes);
                    }

                    return [Encoding.UTF8.GetString(bytes.ToArray())];
                });
                break;
            case "Replace":
                Func<string, string> replace = HfNormalizer.ReadReplace(f);
                _steps.Add(tokens => tokens.Select(replace).ToList());
                break;
            case "ByteFallback":
                _steps.Add(ByteFallback);
                break;
            case "Fuse":
                _steps.Add(tokens => [string.Concat(tokens)]);
                break;
            case "Strip":
                string content = f.RequiredString("content");
                int start = f.OptionalInt("start", 0);
                int stop = f.OptionalInt("stop", 0);
                _steps.Add(tokens => tokens.Select(t => Strip(t, content, start, stop)).ToList());
                break;
            case "Metaspace":
                string replacement = f.OptionalString("replacement") ?? "▁";
                string scheme = f.OptionalString("prepend_scheme") ?? (f.OptionalBool("add_prefix_space", true) ? "always" : "never");
                _steps.Add(tokens => tokens.Select((t, i) =>
                {
                    string s = t.Replace(replacement, " ", StringComparison.Ordinal);
                    return i == 0 && scheme != "never" && s.StartsWith(' ') ? s[1..] : s;
                }).ToList());
                break;
            default:
                throw f.Error("type", $"decoder '{type}' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace).");
        }
    }

    /// <summary>Runs of &lt;0xNN&gt; tokens become UTF-8 text; bytes that do not form valid UTF-8 become U+FFFD, one per byte.</summary>
    private static List<string> ByteFallback(List<string> tokens)
    {
        var result = new List<string>();
        var pending = new List<byte>();
        foreach (string t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
            {
                pending.Add(b);
                continue;
            }

            Flush(pending, result);
            result.Add(t);
        }

        Flush(pending, result);
        return result;
    }

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0)
        {
            return;
        }

        byte[] bytes = pending.ToArray();
        pending.Clear();
        try
        {
            result.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes));
        }
        catch (DecoderFallbackException)
        {
            // Hugging Face replaces every byte of an invalid run with one replacement character.
            result.AddRange(Enumerable.Repeat("\uFFFD", bytes.Length));
        }
    }

    private static string Strip(string token, string content, int start, int stop)
    {
        int from = 0;
        for (int n = 0; n < start && token.AsSpan(from).StartsWith(content, StringComparison.Ordinal); n++)
        {
            from += content.Length;
        }

        int to = token.Length;
        for (int n = 0; n < stop && to - content.Length >= from && token.AsSpan(0, to).EndsWith(content, StringComparison.Ordinal); n++)
        {
            to -= content.Length;
        }

        return token[from..to];
    }
}
