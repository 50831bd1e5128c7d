using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace PeftHost.Tokenizers;

/// <summary>Writes tokenizer files for locally made models, in Hugging Face's standard layout (nothing is downloaded).</summary>
public static partial class TokenizerFiles
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes tokenizer.json and tokenizer_config.json for a GPT-2 style byte-level BPE: the 256 byte tokens, merges
    /// learned deterministically from a built-in English text (or <paramref name="trainingText"/>), then the special tokens.
    /// </summary>
    /// <param name="dir">The output directory (created if needed).</param>
    /// <param name="vocabSize">Total ids including special tokens; at least 256 + the number of special tokens.</param>
    /// <param name="specialTokens">Special tokens (default <c>&lt;|endoftext|&gt;</c>). With <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c> those become bos and eos.</param>
    /// <param name="trainingText">Text to learn merges from; null for the built-in English text.</param>
    /// <returns>The number of ids written (less than <paramref name="vocabSize"/> when the text has no more pairs to merge).</returns>
    public static int WriteByteLevelBpe(string dir, int vocabSize, IReadOnlyList<string>? specialTokens = null, string? trainingText = null)
    {
        ArgumentNullException.ThrowIfNull(dir);
        IReadOnlyList<string> specials = specialTokens ?? [SpecialTokens.EndOfText];
        if (specials.Count == 0 || specials.Distinct(StringComparer.Ordinal).Count() != specials.Count)
        {
            throw new ArgumentException("special tokens must be non-empty and distinct.", nameof(specialTokens));
        }

        if (vocabSize < BpeTrainer.MinimumAlphabet + specials.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize,
                $"must be at least {BpeTrainer.MinimumAlphabet} byte tokens (the 256 bytes less those UTF-8 never uses) + {specials.Count} special tokens.");
        }

        (List<string> vocab, List<(string A, string B)> merges) = BpeTrainer.Train(trainingText ?? TrainingText.English, vocabSize - specials.Count);
        var vocabJson = new Dictionary<string, int>();
        for (int i = 0; i < vocab.Count; i++)
        {
            vocabJson[vocab[i]] = i;
        }

        var added = new List<object>();
        foreach (string s in specials)
        {
            added.Add(new Dictionary<string, object>
            {
                ["id"] = vocab.Count + added.Count, ["content"] = s, ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        }

        var byteLevel = new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var tokenizer = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel,
            ["post_processor"] = byteLevel,
            ["decoder"] = byteLevel,
            ["model"] = new Dictionary<string, object?>
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocabJson,
                ["merges"] = merges.Select(m => $"{m.A} {m.B}").ToList(),
            },
        };
        bool sentence = specials.Contains("<s>") && specials.Contains("</s>");
        string bos = sentence ? "<s>" : specials[0];
        string eos = sentence ? "</s>" : specials[0];
        var config = new Dictionary<string, object?>
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["bos_token"] = bos,
            ["eos_token"] = eos,
            ["unk_token"] = null,
            ["add_bos_token"] = false,
            ["add_eos_token"] = false,
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = 1024,
        };
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(tokenizer, Indented), new UTF8Encoding(false));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(config, Indented), new UTF8Encoding(false));
        return vocab.Count + specials.Count;
    }

    /// <summary>
    /// Writes a BERT vocab.txt ([PAD] [UNK] [CLS] [SEP] [MASK], single characters, ##characters, then the built-in
    /// text's words by frequency) and a tokenizer_config.json with do_lower_case true.
    /// </summary>
    /// <param name="dir">The output directory (created if needed).</param>
    /// <param name="vocabSize">The number of lines; at least the special tokens plus the characters.</param>
    /// <returns>The number of tokens written (less than <paramref name="vocabSize"/> when the text has no more words).</returns>
    public static int WriteWordPieceVocab(string dir, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(dir);
        var tokens = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        const string chars = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()";
        tokens.AddRange(chars.Select(c => c.ToString()));
        tokens.AddRange(chars.Where(char.IsLetterOrDigit).Select(c => "##" + c));
        if (vocabSize < tokens.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"must be at least {tokens.Count} (special tokens and characters).");
        }

        var known = new HashSet<string>(tokens, StringComparer.Ordinal);
        IEnumerable<string> words = WordRegex().Matches(TrainingText.English.ToLowerInvariant())
            .GroupBy(m => m.Value)
            .OrderByDescending(g => g.Count())
            .ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => g.Key);
        foreach (string w in words)
        {
            if (tokens.Count >= vocabSize)
            {
                break;
            }

            if (known.Add(w))
            {
                tokens.Add(w);
            }
        }

        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), string.Join("\n", tokens) + "\n", new UTF8Encoding(false));
        var config = new Dictionary<string, object>
        {
            ["tokenizer_class"] = "BertTokenizer", ["do_lower_case"] = true, ["unk_token"] = "[UNK]", ["sep_token"] = "[SEP]",
            ["pad_token"] = "[PAD]", ["cls_token"] = "[CLS]", ["mask_token"] = "[MASK]", ["model_max_length"] = 512,
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(config, Indented), new UTF8Encoding(false));
        return tokens.Count;
    }

    [GeneratedRegex(@"[a-z]+")]
    private static partial Regex WordRegex();
}
