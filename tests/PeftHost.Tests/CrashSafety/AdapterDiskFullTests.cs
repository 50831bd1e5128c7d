using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Formats;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.CrashSafety;

/// <summary>
/// An adapter folder rewritten on a full disk (a stream failing after N bytes, through AtomicFile's seam):
/// the call fails with AtomicWriteException saying the previous file is unchanged, and both files of the
/// folder are still the previous adapter's, byte for byte (or, for a file written before the failing one, the new one complete).
/// </summary>
public sealed class AdapterDiskFullTests
{
    [Fact]
    public void An_adapter_saved_on_a_full_disk_leaves_the_previous_adapter_intact()
    {
        using var dir = new ScratchFolder();
        string folder = Path.Combine(dir.Path, "adapter");
        string newer = Path.Combine(dir.Path, "newer");
        Save(folder, 1);
        Save(newer, 2);
        string[] files = [AdapterFolder.ConfigFile, AdapterFolder.WeightsFile];
        var before = files.ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(folder, f)));
        var after2 = files.ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(newer, f)));
        for (int k = 0; k < files.Length; k++)
        foreach (long capacity in new long[] { 0, 1, 16, after2[files[k]].Length / 2, after2[files[k]].Length - 1 })
        {
            int opened = 0;
            using (AtomicFile.WrapTemporaryStreams(s => opened++ == k ? new FailingStream(s, capacity) : s))
            {
                var e = Assert.Throws<AtomicWriteException>(() => Save(folder, 2));
                Assert.Contains("No space left on device", e.Message);
                Assert.Contains("The previous version of the file is unchanged", e.Message);
                Assert.EndsWith(files[k], e.TargetPath);
            }
            foreach (string f in files)
            {
                byte[] now = File.ReadAllBytes(Path.Combine(folder, f));
                Assert.True(now.AsSpan().SequenceEqual(before[f]) || now.AsSpan().SequenceEqual(after2[f]), $"{f} is damaged after a full disk in file {k} at byte {capacity}");
            }
            Assert.Equal(files.Order(), Directory.GetFiles(folder).Select(Path.GetFileName).Order());
            Save(folder, 1);
        }
    }

    private static void Save(string folder, int version)
    {
        using var state = new AdapterState("default", new JsonObject { ["peft_type"] = "LORA", ["r"] = 2, ["version"] = version },
            new Dictionary<string, Tensor> { ["model.layers.0.self_attn.q_proj.lora_A.weight"] = full(2, 64, (float)version) });
        AdapterFolder.Write(folder, state, prefixKeys: true);
    }

    /// <summary>Accepts <c>capacity</c> bytes, then fails as a full disk does (ENOSPC).</summary>
    private sealed class FailingStream(Stream inner, long capacity) : Stream
    {
        private long _written;

        public override bool CanRead => false;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (_written + buffer.Length > capacity) throw new IOException("No space left on device", 28);
            inner.Write(buffer);
            _written += buffer.Length;
        }

        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => inner.SetLength(value);
    }
}
