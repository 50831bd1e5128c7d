using System.Collections.Concurrent;
using PeftHost.Formats.BitsAndBytes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// Lookup tables every quantized layer of a kind shares, one per device, alive for the process: the
/// 4-bit byte table (byte b → code[b >> 4], code[b &amp; 15], so one index_select decodes two values) and
/// bitsandbytes' standard 8-bit dynamic map. Layers do not own them, so they are neither saved with a
/// layer's buffers nor disposed with it.
/// </summary>
internal static class SharedTables
{
    private static readonly ConcurrentDictionary<(FourBitType, DeviceType, int), Tensor> Pairs = new();
    private static readonly ConcurrentDictionary<(DeviceType, int), Tensor> Dynamic = new();

    // A complex64 [256] table: real = code[b >> 4], imaginary = code[b & 15]. One 8-byte gather per byte, then
    // view_as_real gives the two float32 values in order, several times faster than gathering rows of a [256, 2] table.
    public static Tensor BytePairs(FourBitType type, Device device) => Pairs.GetOrAdd((type, device.type, device.index), _ =>
    {
        ReadOnlySpan<float> code = FourBitCode.Table(type);
        var high = new float[256];
        var low = new float[256];
        for (int b = 0; b < 256; b++)
        {
            high[b] = code[b >> 4];
            low[b] = code[b & 0x0F];
        }
        using Tensor re = torch.tensor(high), im = torch.tensor(low);
        return Persistent(torch.complex(re, im), device);
    });

    public static Tensor DynamicMap(Device device) => Dynamic.GetOrAdd((device.type, device.index), _ =>
        Persistent(torch.tensor(Formats.BitsAndBytes.DynamicMap.Signed.ToArray()), device));

    private static Tensor Persistent(Tensor cpu, Device device)
    {
        Tensor t = device.type == DeviceType.CPU ? cpu : cpu.to(device, disposeAfter: true);
        return t.DetachFromDisposeScope();
    }
}
