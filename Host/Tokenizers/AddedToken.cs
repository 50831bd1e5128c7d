namespace PeftHost.Tokenizers;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>: matched in the text before the model runs.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool Normalized, bool SingleWord)
{
    public static AddedToken Read(JsonFields f) => new(
        f.RequiredInt("id") is int id && id >= 0 ? id : throw f.Error("id", "must be a non-negative token id."),
        f.RequiredString("content"),
        f.OptionalBool("special", false),
        f.OptionalBool("lstrip", false),
        f.OptionalBool("rstrip", false),
        f.OptionalBool("normalized", !f.OptionalBool("special", false)),
        f.OptionalBool("single_word", false));
}
