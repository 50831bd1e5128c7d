namespace PeftHost.Tokenizers;

/// <summary>The ids of a sentence pair and, per id, which sentence it belongs to (BERT's token_type_ids).</summary>
/// <param name="Ids">The token ids, special tokens included when requested.</param>
/// <param name="TypeIds">0 for the first sentence's tokens, 1 for the second's (as the tokenizer's template assigns them).</param>
public sealed record EncodedPair(IReadOnlyList<int> Ids, IReadOnlyList<int> TypeIds);
