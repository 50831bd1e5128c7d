using System.Reflection;

namespace PeftHost.Engine.Runtime;

/// <summary>Facts fixed at build time.</summary>
public static class BuildInfo
{
    /// <summary>The TorchSharp backend the build selected (the TorchBackend property).</summary>
    public static string TorchBackend =>
        typeof(BuildInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value ?? "cpu";

    /// <summary>The TorchSharp managed assembly's version.</summary>
    public static string TorchSharpVersion =>
        typeof(TorchSharp.torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown";
}
