namespace PeftHost.Tokenizers;

/// <summary>A loaded tokenizer: the single entry point for text to ids and back.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of distinct ids: the model vocabulary plus added tokens.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or null when the tokenizer has none.</summary>
    int? BosTokenId { get; }

    /// <summary>Ids that end generation: the configured eos token and generation_config.json's eos ids.</summary>
    IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>Padding id, or null when the tokenizer has none.</summary>
    int? PadTokenId { get; }

    /// <summary>The chat template of tokenizer_config.json (or chat_template.jinja), or null when it has none.</summary>
    ChatTemplate? ChatTemplate { get; }

    /// <summary>Encodes text; with <paramref name="addSpecialTokens"/> the tokenizer's own special tokens (bos, [CLS]...) are added.</summary>
    /// <param name="text">The text.</param>
    /// <param name="addSpecialTokens">Whether to add the post-processor's special tokens.</param>
    /// <returns>The token ids.</returns>
    /// <exception cref="System.Text.RegularExpressions.RegexMatchTimeoutException">A regular expression of the tokenizer file backtracked for more than a second on this text (a hostile or broken pattern).</exception>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true);

    /// <summary>Encodes a sentence pair with type ids (0 for the first sentence, 1 for the second where the template says so).</summary>
    /// <param name="first">The first sentence.</param>
    /// <param name="second">The second sentence.</param>
    /// <param name="addSpecialTokens">Whether to add the post-processor's special tokens.</param>
    /// <returns>The ids and their type ids.</returns>
    EncodedPair EncodePair(string first, string second, bool addSpecialTokens = true);

    /// <summary>Decodes ids to text.</summary>
    /// <param name="ids">The token ids.</param>
    /// <param name="skipSpecialTokens">Whether special tokens are left out.</param>
    /// <returns>The text.</returns>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    /// <summary>The id of a token string (model vocabulary or added token), or null.</summary>
    /// <param name="token">The token as stored in the vocabulary.</param>
    /// <returns>The id, or null when unknown.</returns>
    int? TokenToId(string token);

    /// <summary>The token string of an id, or null when the id is out of range.</summary>
    /// <param name="id">The id.</param>
    /// <returns>The token, or null.</returns>
    string? IdToToken(int id);
}
