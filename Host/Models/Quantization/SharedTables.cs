using System.Collections.Concurrent;
using PeftHost.Formats.BitsAndBytes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Quantization;

/// <summary>
/// Lookup tables every quantized layer of a kind shares, one per device, alive for the process: the
/// 4-bit byte table (byte b → [code[b >> 4], code[b &amp; 15]], so one index_select decodes two values) and
/// bitsandbytes' standard 8-bit dynamic map. Layers do not own them, so they are neither saved with a
/// layer's buffers nor disposed with it.
/// </summary>
internal static class SharedTables
{
    private static readonly ConcurrentDictionary<(FourBitType, DeviceType, int), Tensor> Pairs = new();
    private static readonly ConcurrentDictionary<(DeviceType, int), Tensor> Dynamic = new();

    public static Tensor BytePairs(FourBitType type, Device device) => Pairs.GetOrAdd((type, device.type, device.index), _ =>
    {
        ReadOnlySpan<float> code = FourBitCode.Table(type);
        var values = new float[512];
        for (int b = 0; b < 256; b++)
        {
            values[2 * b] = code[b >> 4];
            values[2 * b + 1] = code[b & 0x0F];
        }
        return Persistent(torch.tensor(values, [256, 2]), device);
    });

    public static Tensor DynamicMap(Device device) => Dynamic.GetOrAdd((device.type, device.index), _ =>
        Persistent(torch.tensor(Formats.BitsAndBytes.DynamicMap.Signed.ToArray()), device));

    private static Tensor Persistent(Tensor cpu, Device device)
    {
        Tensor t = device.type == DeviceType.CPU ? cpu : cpu.to(device, disposeAfter: true);
        return t.DetachFromDisposeScope();
    }
}
