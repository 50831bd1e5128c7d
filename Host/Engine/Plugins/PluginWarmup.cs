using System.Reflection;
using System.Runtime.CompilerServices;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// Compiles a freshly loaded plugin's code before a reload hands it the live adapters. The handover runs under the
/// models' write lock, which every forward pass waits for; without this, the JIT compiles the new version's methods
/// there, as they are first called, while serving stands still.
/// </summary>
internal static class PluginWarmup
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>
    /// JIT-compiles every non-generic method and constructor with a body in the assemblies of <paramref name="plugin"/>'s
    /// tuners. Returns how many were compiled and how many were left to the JIT (their first call compiles them, or fails, as without this).
    /// </summary>
    public static (int Compiled, int Left) CompileAhead(PluginAssembly plugin)
    {
        int compiled = 0, left = 0;
        foreach (Assembly assembly in plugin.Tuners.Values.Select(t => t.GetType().Assembly).Distinct())
        {
            Type[] types;
            try
            {
                types = assembly.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                types = [.. e.Types.OfType<Type>()];   // the loadable ones: loading already checked the plugin
            }
            foreach (Type type in types.Where(t => !t.ContainsGenericParameters))
            {
                foreach (MethodBase method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
                {
                    if (method.IsAbstract || method.ContainsGenericParameters) continue;
                    // Best effort: a method the JIT cannot compile ahead (a missing or conflicting dependency, say) is
                    // compiled, or fails, when first called, exactly as without this; the reload's own checks report it.
                    try
                    {
                        if (method.GetMethodBody() is null) continue;
                        RuntimeHelpers.PrepareMethod(method.MethodHandle);
                        compiled++;
                    }
                    catch (Exception e) when (e is ArgumentException or TypeLoadException or BadImageFormatException or MissingMemberException
                        or FileNotFoundException or FileLoadException or InvalidProgramException or NotSupportedException)
                    {
                        left++;
                    }
                }
            }
        }
        return (compiled, left);
    }
}
