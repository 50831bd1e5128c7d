using TorchSharp;

namespace PeftHost.Engine.Runtime;

/// <summary>The run-time device choice (<c>--device cpu|cuda[:N]</c>).</summary>
public static class TorchDevice
{
    /// <summary>Parses and checks a device: "cpu", "cuda" or "cuda:N".</summary>
    /// <exception cref="ArgumentException">The text is not a device name, or CUDA / that GPU is not available (the message says which backend is built in).</exception>
    public static torch.Device Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return torch.CPU;
        if (t == "cuda" || t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (t.Length > 4 && (!int.TryParse(t[5..], out index) || index < 0))
                throw new ArgumentException($"Invalid device '{text}': use cpu, cuda or cuda:N.");
            if (!torch.cuda.is_available())
                throw new ArgumentException($"Device '{text}' requested but CUDA is not available: this build uses TorchSharp backend '{BuildInfo.TorchBackend}'" +
                    (BuildInfo.TorchBackend == "cpu" ? " (rebuild with -p:TorchBackend=cuda-linux or cuda-windows)" : " and no CUDA device or driver was found") + ".");
            int count = torch.cuda.device_count();
            if (index >= count) throw new ArgumentException($"Device '{text}' requested but only {count} CUDA device(s) exist.");
            return torch.device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"Invalid device '{text}': use cpu, cuda or cuda:N.");
    }

    /// <summary>The devices this process can use, for `doctor`.</summary>
    public static IReadOnlyList<string> Available()
    {
        var list = new List<string> { "cpu" };
        if (torch.cuda.is_available())
            for (int i = 0; i < torch.cuda.device_count(); i++) list.Add($"cuda:{i}");
        return list;
    }
}
