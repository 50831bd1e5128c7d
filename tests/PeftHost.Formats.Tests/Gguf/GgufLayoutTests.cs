using System.Buffers.Binary;
using System.Text;
using PeftHost.Formats.Gguf;
using Xunit;

namespace PeftHost.Formats.Tests.Gguf;

/// <summary>The exact bytes of a small file, laid out by hand from the GGUF spec.</summary>
public sealed class GgufLayoutTests
{
    [Fact]
    public void Writer_produces_the_spec_layout_byte_for_byte()
    {
        var w = new GgufWriter();
        w.SetMetadata("a", GgufValue.FromUInt32(7));
        w.AddTensor("t", [2], GgmlType.F32, new float[] { 1f, -1f });
        var ms = new MemoryStream();
        w.Write(ms);

        var expected = new List<byte>();
        void U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); expected.AddRange(b); }
        void U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); expected.AddRange(b); }
        expected.AddRange(Encoding.ASCII.GetBytes("GGUF"));
        U32(3);                       // version
        U64(1);                       // tensor count
        U64(1);                       // metadata count
        U64(1); expected.Add((byte)'a');
        U32(4); U32(7);               // UINT32 7
        U64(1); expected.Add((byte)'t');
        U32(1); U64(2);               // one dimension of 2
        U32(0);                       // F32
        U64(0);                       // offset 0
        Assert.Equal(74, expected.Count);
        expected.AddRange(new byte[96 - 74]);           // pad to the 32-byte alignment
        expected.AddRange(new byte[] { 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0xBF });
        expected.AddRange(new byte[128 - 104]);         // the data section ends padded too

        Assert.Equal(expected.ToArray(), ms.ToArray());
        ms.Position = 0;
        using GgufFile f = GgufFile.Read(ms, "layout.gguf");
        Assert.Equal(96, f.DataOffset);
    }

    [Fact]
    public void Second_tensor_starts_at_the_next_aligned_offset()
    {
        var w = new GgufWriter();
        GgufTensorInfo a = w.AddTensor("a", [32], GgmlType.Q4_0, new byte[18]);
        GgufTensorInfo b = w.AddTensor("b", [32], GgmlType.Q8_0, new byte[34]);
        GgufTensorInfo c = w.AddTensor("c", [1], GgmlType.F16, new byte[2]);
        Assert.Equal(0UL, a.Offset);
        Assert.Equal(32UL, b.Offset);
        Assert.Equal(96UL, c.Offset);
    }
}
