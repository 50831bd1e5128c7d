using System.Reflection;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Disposes a module tree including the native objects TorchSharp 0.107 leaves behind. Every TorchSharp module
/// (its own Linear, Conv and Bilinear among them) owns a native libtorch module through two handles, freed only by
/// <c>Module.Dispose(bool)</c>; Linear, the convolutions, Bilinear and PReLU override that method without calling
/// the base, and the handles' finalizers free nothing, so each such module disposed leaks its native module (about
/// 0.7 KiB, measured): adapters created and deleted a thousand times grew the process by megabytes. After the
/// tree's own dispose, this frees whatever handle is still open (a no-op for modules that freed theirs). Should a
/// TorchSharp upgrade rename the fields, nothing is released and NativeModuleReleaseTests fails.
/// </summary>
internal static class NativeModuleRelease
{
    private static readonly FieldInfo[] HandleFields =
    [
        .. new[] { "handle", "boxedModule" }
            .Select(name => typeof(nn.Module).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic))
            .Where(f => f is not null && typeof(IDisposable).IsAssignableFrom(f.FieldType))
            .Select(f => f!),
    ];

    /// <summary>Disposes <paramref name="module"/> and its registered sub-modules, and frees their native modules.</summary>
    public static void Dispose(nn.Module module)
    {
        // Gathered first: disposing empties the containers.
        nn.Module[] tree = [module, .. module.modules()];
        module.Dispose();
        foreach (nn.Module m in tree)
        {
            foreach (FieldInfo f in HandleFields) (f.GetValue(m) as IDisposable)?.Dispose();
        }
    }
}
