using System.Diagnostics;
using PeftHost.Formats.Gguf;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using PeftHost.Tests.Support;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.CrashSafety;

/// <summary>
/// Every writer that exists (safetensors, shards and index, GGUF, adapter folders, merged model folders) is
/// killed with SIGKILL at random moments while it rewrites its files in a loop (a child process: this test
/// executable, see <see cref="CrashWriter"/>); after each kill every file there is the complete old version or
/// the complete new one, byte for byte the same as that version written undisturbed (the merged weights: within
/// 1e-5, since the merge runs in another process). Temporary files may remain; they are never the target's name.
/// </summary>
public sealed class SigkillTests
{
    public static TheoryData<string> Kinds => [.. CrashWriter.Kinds];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Files_are_the_old_or_the_new_version_after_SIGKILL_at_any_moment(string kind)
    {
        using var dir = new ScratchFolder();
        string[] references = [Path.Combine(dir.Path, "v1"), Path.Combine(dir.Path, "v2")];
        for (int v = 1; v <= 2; v++) CrashWriter.Write(kind, references[v - 1], v);
        string target = Path.Combine(dir.Path, "target");
        var random = new Random(kind.Length * 7919);
        int kills = kind is "merged" or "adapter" ? 4 : 6;
        var seen = new HashSet<int>();
        for (int k = 0; k < kills; k++)
        {
            using Process child = Start(kind, target);
            // Wait until it has written at least once, then kill it somewhere in a later write.
            string? first = child.StandardOutput.ReadLine();
            if (first is null || !first.StartsWith("wrote", StringComparison.Ordinal))
                Assert.Fail($"the writer child did not start: {first} {child.StandardError.ReadToEnd()}");
            Thread.Sleep(random.Next(0, kind == "merged" ? 1500 : 120));
            child.Kill();
            child.WaitForExit();
            foreach (string file in Directory.GetFiles(target).Where(f => !Path.GetFileName(f).StartsWith('.')))
                seen.Add(Matching(kind, file, references));
        }
        Assert.NotEmpty(seen);
    }

    // Which version (1 or 2) the file is; fails when it is neither, complete.
    private static int Matching(string kind, string file, string[] references)
    {
        string name = Path.GetFileName(file);
        for (int v = 1; v <= 2; v++)
        {
            string reference = Path.Combine(references[v - 1], name);
            if (!File.Exists(reference)) continue;
            if (File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(reference))) return v;
            if (kind == "merged" && name.EndsWith(".safetensors", StringComparison.Ordinal) && SameWeights(file, reference)) return v;
        }
        Assert.Fail($"{kind}: '{name}' after SIGKILL is neither version 1 nor version 2 complete ({new FileInfo(file).Length} bytes).");
        return 0;
    }

    private static bool SameWeights(string file, string reference)
    {
        try
        {
            using SafetensorsFile a = SafetensorsFile.Open(file);
            using SafetensorsFile b = SafetensorsFile.Open(reference);
            if (!a.Tensors.Select(t => (t.Name, t.DType)).SequenceEqual(b.Tensors.Select(t => (t.Name, t.DType)))) return false;
            foreach (SafetensorsTensorInfo t in a.Tensors)
            {
                using Tensor x = TensorBridge.Read(a, t.Name, ScalarType.Float32);
                using Tensor y = TensorBridge.Read(b, t.Name, ScalarType.Float32);
                if (Tensors.MaxAbsDiff(x, y) > 1e-5) return false;
            }
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    private static Process Start(string kind, string folder)
    {
        var info = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "PeftHost.Tests.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.Environment[CrashWriter.Variable] = $"{kind}|{folder}";
        return Process.Start(info)!;
    }
}
