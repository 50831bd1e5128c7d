using System.Text;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>Temporary model directories holding hand-written tokenizer files.</summary>
internal static class TokenizerTestFiles
{
    public static string NewDir() => Directory.CreateTempSubdirectory("pefthost-tok-").FullName;

    public static string Write(string dir, string name, string content)
    {
        File.WriteAllText(Path.Combine(dir, name), content, new UTF8Encoding(false));
        return dir;
    }

    /// <summary>A GPT-2 layout tokenizer.json with a tiny vocabulary; merges are given as "a b" strings.</summary>
    public const string Gpt2Tiny = """
        {
          "version": "1.0",
          "added_tokens": [
            { "id": 18, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }
          ],
          "normalizer": null,
          "pre_tokenizer": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
          "post_processor": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true },
          "decoder": { "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true },
          "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false,
            "vocab": { "h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "he": 8, "ll": 9, "llo": 10, "hello": 11,
                       "Ġw": 12, "or": 13, "Ġwor": 14, "Ġworld": 15, "ld": 16, "!": 17 },
            "merges": [ "h e", "l l", "ll o", "he llo", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld" ]
          }
        }
        """;

    /// <summary>A Llama 2 layout tokenizer.json: ▁ for spaces, &lt;0xNN&gt; byte fallback, merges as pairs.</summary>
    public static string SentencePieceTiny()
    {
        var vocab = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
        for (int b = 0; b < 256; b++)
        {
            vocab.Append($", \"<0x{b:X2}>\": {3 + b}");
        }

        vocab.Append(", \"▁\": 259, \"h\": 260, \"i\": 261, \"▁h\": 262, \"▁hi\": 263");
        return $$"""
            {
              "version": "1.0",
              "added_tokens": [
                { "id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true },
                { "id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true },
                { "id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }
              ],
              "normalizer": { "type": "Sequence", "normalizers": [
                { "type": "Prepend", "prepend": "▁" },
                { "type": "Replace", "pattern": { "String": " " }, "content": "▁" } ] },
              "pre_tokenizer": null,
              "post_processor": { "type": "TemplateProcessing",
                "single": [ { "SpecialToken": { "id": "<s>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } } ],
                "pair": [ { "SpecialToken": { "id": "<s>", "type_id": 0 } }, { "Sequence": { "id": "A", "type_id": 0 } },
                          { "SpecialToken": { "id": "<s>", "type_id": 1 } }, { "Sequence": { "id": "B", "type_id": 1 } } ],
                "special_tokens": { "<s>": { "id": "<s>", "ids": [ 1 ], "tokens": [ "<s>" ] } } },
              "decoder": { "type": "Sequence", "decoders": [
                { "type": "Replace", "pattern": { "String": "▁" }, "content": " " },
                { "type": "ByteFallback" }, { "type": "Fuse" },
                { "type": "Strip", "content": " ", "start": 1, "stop": 0 } ] },
              "model": { "type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                "vocab": { {{vocab}} },
                "merges": [ [ "▁", "h" ], [ "▁h", "i" ] ] }
            }
            """;
    }

    public const string LlamaConfig = """
        { "add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": null }
        """;
}
