using System.Buffers.Binary;
using System.Text;

namespace PeftHost.Formats.Tests.Safetensors;

/// <summary>Hand-made safetensors files (for broken headers that no writer would produce).</summary>
internal static class RawSafetensors
{
    public static void Write(string path, string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(headerJson);
        using var f = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, headerLengthOverride ?? (ulong)header.Length);
        f.Write(len);
        f.Write(header);
        f.Write(data);
    }
}
