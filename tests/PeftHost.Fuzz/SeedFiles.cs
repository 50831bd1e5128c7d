using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using PeftHost.Formats.Gguf;

namespace PeftHost.Fuzz;

/// <summary>
/// Small valid inputs, built by hand from the format specifications (not by the writers under test):
/// the seed corpora are made from them (<c>--write-seeds</c>) and the mutation tests start from them.
/// </summary>
public static class SeedFiles
{
    /// <summary>The seeds made here rather than written by hand: (target, file name, bytes).</summary>
    public static IEnumerable<(string Target, string File, byte[] Bytes)> Generated()
    {
        yield return ("safetensors", "f32.safetensors", Safetensors(("a", [2, 2]), ("b", [3])));
        yield return ("safetensors", "dtypes.safetensors", Safetensors([("h", "F16", [2]), ("bf", "BF16", [1, 2]), ("d", "F64", [1]), ("i", "I64", [1]),
            ("j", "I32", [2]), ("s", "I16", [1]), ("c", "I8", [3]), ("u", "U8", [2]), ("m", "BOOL", [1]), ("scalar", "F32", []), ("empty", "F32", [0, 3])]));
        yield return ("safetensors", "empty.safetensors", Safetensors(Array.Empty<(string, string, long[])>()));
        yield return ("gguf", "mixed.gguf", Gguf());
        yield return ("tokenizer-json", "bytelevel.json", ByteLevelTokenizerJson);
    }

    /// <summary>A safetensors file of float32 tensors whose values count up from 0.</summary>
    public static byte[] Safetensors(params (string Name, long[] Shape)[] tensors) =>
        Safetensors([.. tensors.Select(t => (t.Name, "F32", t.Shape))]);

    /// <summary>A safetensors file of tensors of any dtype (values: their byte index), with <c>__metadata__</c>.</summary>
    public static byte[] Safetensors(IReadOnlyList<(string Name, string DType, long[] Shape)> tensors)
    {
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long offset = 0;
        foreach ((string name, string dtype, long[] shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * DTypeSize(dtype);
            header[name] = new Dictionary<string, object> { ["dtype"] = dtype, ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int padded = (json.Length + 7) / 8 * 8;
        var file = new byte[8 + padded + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        json.CopyTo(file, 8);
        file.AsSpan(8 + json.Length, padded - json.Length).Fill((byte)' ');
        for (long i = 0; i < offset; i++) file[8 + padded + i] = (byte)i;
        return file;
    }

    private static int DTypeSize(string dtype) => dtype switch
    {
        "BOOL" or "U8" or "I8" => 1,
        "I16" or "F16" or "BF16" => 2,
        "I32" or "F32" => 4,
        _ => 8,
    };

    /// <summary>A GGUF v3 file: one metadata value of each kind (a string array too) and f32, f16, q4_0 and q8_0 tensors.</summary>
    public static byte[] Gguf()
    {
        using var buffer = new MemoryStream();
        using var w = new BinaryWriter(buffer);
        (string Name, ulong[] Dims, uint Type, int Bytes)[] tensors =
        [
            ("f32", [4, 2], 0, 32), ("f16", [4], 1, 8), ("q4", [32], 2, 18), ("q8", [32, 2], 8, 68),
        ];
        w.Write(GgufConstants.Magic);
        w.Write(3u);
        w.Write((ulong)tensors.Length);
        w.Write(5UL);
        Key(w, "general.architecture", 8); Str(w, "llama");
        Key(w, "llama.block_count", 4); w.Write(2u);
        Key(w, "llama.rope.freq_base", 6); w.Write(10000f);
        Key(w, "tokenizer.ggml.add_bos_token", 7); w.Write((byte)1);
        Key(w, "tokenizer.ggml.tokens", 9); w.Write(8u); w.Write(3UL); Str(w, "<s>"); Str(w, "a"); Str(w, "b");
        ulong offset = 0;
        foreach ((string name, ulong[] dims, uint type, int bytes) in tensors)
        {
            Str(w, name);
            w.Write((uint)dims.Length);
            foreach (ulong d in dims) w.Write(d);
            w.Write(type);
            w.Write(offset);
            offset += (ulong)((bytes + 31) / 32 * 32);
        }
        Pad(w);
        byte value = 0;
        foreach ((_, _, uint type, int bytes) in tensors)
        {
            for (int i = 0; i < bytes; i++)
                // f16 scales of the quantized blocks stay small and finite (0x3C00 = 1.0).
                w.Write(type is 2 or 8 && (i % (type == 2 ? 18 : 34)) < 2 ? (i % 2 == 0 ? (byte)0x00 : (byte)0x3C) : value++);
            Pad(w);
        }
        w.Flush();
        return buffer.ToArray();

        static void Key(BinaryWriter w, string key, uint type) { Str(w, key); w.Write(type); }
        static void Str(BinaryWriter w, string s) { byte[] b = Encoding.UTF8.GetBytes(s); w.Write((ulong)b.Length); w.Write(b); }
        static void Pad(BinaryWriter w) { while (w.BaseStream.Position % 32 != 0) w.Write((byte)0); }
    }

    /// <summary>A GPT-2 style byte-level BPE tokenizer.json: 256 byte tokens, a few merges, one added special token.</summary>
    public static byte[] ByteLevelTokenizerJson { get; } = MakeByteLevelTokenizerJson();

    private static byte[] MakeByteLevelTokenizerJson()
    {
        // GPT-2's byte-to-character table: printable bytes map to themselves, the rest to U+0100 onwards.
        var vocab = new Dictionary<string, int>();
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE;
            vocab[((char)(printable ? b : 256 + shifted++)).ToString()] = b;
        }
        string[] merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"];
        foreach (string m in merges) vocab[m.Replace(" ", "", StringComparison.Ordinal)] = vocab.Count;
        var tokenizer = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new[] { new Dictionary<string, object> { ["id"] = vocab.Count, ["content"] = "<|endoftext|>", ["special"] = true, ["normalized"] = false } },
            ["normalizer"] = null,
            ["pre_tokenizer"] = new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new Dictionary<string, object> { ["type"] = "ByteLevel" },
            ["decoder"] = new Dictionary<string, object> { ["type"] = "ByteLevel" },
            ["model"] = new Dictionary<string, object?> { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        return JsonSerializer.SerializeToUtf8Bytes(tokenizer);
    }
}
