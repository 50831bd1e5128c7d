namespace PeftHost.Tokenizers;

/// <summary>Loads the tokenizer of a Hugging Face style model directory.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Reads <c>tokenizer.json</c> (BPE: byte-level or SentencePiece style) or, when absent, BERT's
    /// <c>vocab.txt</c>, together with tokenizer_config.json, special_tokens_map.json and generation_config.json.
    /// </summary>
    /// <param name="modelDir">The model directory.</param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="TokenizerLoadException">A file is missing, malformed or uses an unsupported feature; the message names the file and field.</exception>
    public static ITextTokenizer FromDirectory(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir))
        {
            throw new TokenizerLoadException(modelDir, null, "directory not found.");
        }

        TokenizerConfig config = TokenizerConfig.Read(modelDir);
        string json = Path.Combine(modelDir, "tokenizer.json");
        string vocab = Path.Combine(modelDir, "vocab.txt");
        // BERT repositories ship a WordPiece tokenizer.json beside vocab.txt: the latter is the one read.
        if (File.Exists(json) && !(File.Exists(vocab) && IsWordPieceJson(json)))
        {
            return HfJsonTokenizer.Load(json, config);
        }

        if (File.Exists(vocab))
        {
            return WordPieceTextTokenizer.Load(vocab, config);
        }

        throw new TokenizerLoadException(modelDir, null, "neither tokenizer.json nor vocab.txt was found (tokenizer.model SentencePiece files are not read; convert them to tokenizer.json).");
    }

    /// <summary>Loads a tokenizer.json file with an explicit configuration.</summary>
    /// <param name="tokenizerJsonPath">The tokenizer.json path.</param>
    /// <param name="config">Special tokens and template; <c>new TokenizerConfig()</c> for none.</param>
    /// <returns>The tokenizer.</returns>
    public static ITextTokenizer FromTokenizerJson(string tokenizerJsonPath, TokenizerConfig config)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        ArgumentNullException.ThrowIfNull(config);
        return HfJsonTokenizer.Load(tokenizerJsonPath, config);
    }

    private static bool IsWordPieceJson(string path)
    {
        using System.Text.Json.JsonDocument doc = JsonFields.Parse(path);
        var root = new JsonFields(path, doc.RootElement, "");
        return root.TryGet("model", out JsonFields model) && model.OptionalString("type") == "WordPiece";
    }
}
