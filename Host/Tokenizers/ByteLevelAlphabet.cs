using System.Text;

namespace PeftHost.Tokenizers;

/// <summary>
/// GPT-2's reversible byte-to-character table: every byte maps to a printable character so that
/// byte-level BPE vocabularies can be stored as JSON strings (space becomes 'Ġ', newline 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildTable();
    private static readonly Dictionary<char, byte> CharToByte = BuildReverse();

    public static char Map(byte b) => ByteToChar[b];

    public static string Encode(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            sb.Append(ByteToChar[b]);
        }

        return sb.ToString();
    }

    /// <summary>Maps a token back to bytes; a token with characters outside the table is taken as raw UTF-8 (as Hugging Face does for added tokens).</summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        foreach (char c in token)
        {
            if (!CharToByte.ContainsKey(c))
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
        }

        foreach (char c in token)
        {
            bytes.Add(CharToByte[c]);
        }
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var direct = new bool[256];
        foreach ((int from, int to) in new[] { ('!', '~'), ('¡', '¬'), ('®', 'ÿ') })
        {
            for (int b = from; b <= to; b++)
            {
                direct[b] = true;
                table[b] = (char)b;
            }
        }

        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!direct[b])
            {
                table[b] = (char)(256 + n);
                n++;
            }
        }

        return table;
    }

    private static Dictionary<char, byte> BuildReverse()
    {
        var d = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++)
        {
            d[ByteToChar[b]] = (byte)b;
        }

        return d;
    }
}
