using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Logging;
using PeftHost.Abstractions;
using PeftHost.Abstractions.Tuning;
using TorchSharp;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// One loaded version of a plugin: its collectible load context and the tuners it exports.
/// Abstractions, TorchSharp and the logging abstractions are shared with the host, so a
/// <c>Tensor</c>, a <c>Module</c> or an <c>ILogger</c> is the same type on both sides.
/// </summary>
public sealed class PluginAssembly
{
    // The types whose assemblies the host shares with every plugin (and their dependencies).
    private static readonly Type[] SharedTypes = [typeof(ITuner), typeof(torch), typeof(ILogger)];

    private PluginLoader? _loader;
    private Dictionary<string, ITuner> _tuners;

    private PluginAssembly(PluginManifest manifest, PluginLoader loader, Dictionary<string, ITuner> tuners, WeakReference context)
    {
        Manifest = manifest;
        _loader = loader;
        _tuners = tuners;
        Context = context;
    }

    /// <summary>The plugin's manifest.</summary>
    public PluginManifest Manifest { get; }

    /// <summary>A weak reference to the load context: dead once the plugin is really unloaded.</summary>
    public WeakReference Context { get; }

    /// <summary>The tuners by peft_type.</summary>
    public IReadOnlyDictionary<string, ITuner> Tuners => _tuners;

    /// <summary>"id version", for messages.</summary>
    public string Label => $"'{Manifest.Id}' {Manifest.Version}";

    /// <summary>Whether an assembly belongs to this plugin's load context.</summary>
    public bool Owns(Assembly assembly) => _loader is not null && Context.Target is AssemblyLoadContext alc && AssemblyLoadContext.GetLoadContext(assembly) == alc;

    /// <summary>
    /// Loads a plugin whose manifest was already checked: a collectible context, the assembly read
    /// into memory (the file stays free to be replaced), every referenced assembly resolved, each
    /// declared tuner created and checked against its declaration.
    /// </summary>
    /// <exception cref="PluginLoadException">The plugin cannot be loaded; the message says why.</exception>
    [MethodImpl(MethodImplOptions.NoInlining)] // keeps locals of the load off the caller's frame, so unload is not delayed
    public static PluginAssembly Load(PluginManifest manifest)
    {
        PluginLoader loader = PluginLoader.CreateFromAssemblyFile(manifest.AssemblyPath, isUnloadable: true, SharedTypes, config =>
        {
            config.LoadInMemory = true;
            config.PreferSharedTypes = true;
        });
        try
        {
            Assembly assembly;
            try
            {
                assembly = loader.LoadDefaultAssembly();
            }
            catch (Exception e) when (e is BadImageFormatException or FileLoadException or FileNotFoundException)
            {
                throw new PluginLoadException($"{manifest.AssemblyPath}: cannot load the assembly: {e.Message}", e);
            }

            var missing = new List<string>();
            foreach (AssemblyName reference in assembly.GetReferencedAssemblies())
            {
                try { loader.LoadAssembly(reference); }
                catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
                {
                    missing.Add($"{reference.Name} {reference.Version} ({e.GetType().Name})");
                }
            }
            if (missing.Count > 0)
                throw new PluginLoadException($"{manifest.AssemblyPath}: missing dependency: {string.Join(", ", missing)}. Put it in the plugin's folder ({Path.GetDirectoryName(manifest.AssemblyPath)}).");

            var tuners = new Dictionary<string, ITuner>(StringComparer.Ordinal);
            foreach ((string peftType, string typeName) in manifest.Tuners)
            {
                Type type = assembly.GetType(TypeNameOnly(typeName), throwOnError: false)
                    ?? throw new PluginLoadException($"{manifest.AssemblyPath}: declared tuner type '{typeName}' for {peftType} does not exist in the assembly.");
                if (!typeof(ITuner).IsAssignableFrom(type))
                    throw new PluginLoadException($"{manifest.AssemblyPath}: tuner type '{type.FullName}' does not implement ITuner of contract {PeftContract.Version} (is Abstractions shared?).");
                ITuner tuner;
                try { tuner = (ITuner)Activator.CreateInstance(type)!; }
                catch (Exception e)
                {
                    Exception cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
                    throw new PluginLoadException($"{manifest.AssemblyPath}: creating tuner '{type.FullName}' failed: {cause.GetType().Name}: {cause.Message}", cause);
                }
                if (tuner.PeftType != peftType)
                    throw new PluginLoadException($"{manifest.AssemblyPath}: tuner '{type.FullName}' is declared for {peftType} but reports {tuner.PeftType}.");
                tuners[peftType] = tuner;
            }
            var context = new WeakReference(AssemblyLoadContext.GetLoadContext(assembly));
            return new PluginAssembly(manifest, loader, tuners, context);
        }
        catch
        {
            loader.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts unloading: drops the tuners and disposes the loader. The context is collected once
    /// nothing refers to the plugin's types any more; <see cref="Context"/> tells when.
    /// </summary>
    public void Unload()
    {
        _tuners = new Dictionary<string, ITuner>();
        _loader?.Dispose();
        _loader = null;
    }

    // A serialized attribute type name may carry ", Assembly, Version=..."; the type is in this assembly.
    private static string TypeNameOnly(string serialized)
    {
        int comma = serialized.IndexOf(',');
        return comma < 0 ? serialized : serialized[..comma].Trim();
    }
}
