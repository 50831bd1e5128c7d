using System.Reflection;
using PeftHost.Abstractions.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Surgery;

/// <summary>
/// Finds and replaces child modules of a TorchSharp model by dotted path, as PEFT does with
/// <c>setattr(parent, name, wrapper)</c>, and undoes every replacement exactly.
/// </summary>
/// <remarks>
/// A TorchSharp module holds each child twice: in the C# fields its <c>forward</c> reads, and in
/// the registered-module dictionary that <c>named_modules</c>, <c>state_dict</c> and <c>to()</c>
/// walk. A replacement must change both, or the wrapper is listed but never called (or the
/// reverse). This class is the only place that does it; tuners never touch fields or reflection.
/// Children of <c>ModuleList</c> and <c>ModuleDict</c> are replaced through the container.
/// </remarks>
public sealed class ModelSurgeon
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    // The registered-children dictionary, declared on nn.Module (TorchSharp 0.107).
    private static readonly FieldInfo SubmodulesField =
        typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new InvalidOperationException("This TorchSharp version has no nn.Module._internal_submodules field; model surgery needs updating.");

    private readonly Stack<Replacement> _replacements = new();

    /// <summary>Operates on <paramref name="root"/>, the model's top module.</summary>
    public ModelSurgeon(nn.Module root) => Root = root;

    /// <summary>The model's top module.</summary>
    public nn.Module Root { get; }

    /// <summary>Every module below the root with its dotted path (the root itself excluded), in registration order.</summary>
    public IEnumerable<(string Path, nn.Module Module)> NamedModules() =>
        Root.named_modules().Where(m => m.name.Length > 0);

    /// <summary>The module at a dotted path.</summary>
    /// <exception cref="ModelSurgeryException">No module has that path; the message names the nearest existing parent.</exception>
    public nn.Module Get(string path)
    {
        nn.Module current = Root;
        string walked = "";
        foreach (string part in path.Split('.'))
        {
            nn.Module? next = Children(current).TryGetValue(part, out nn.Module? child) ? child : null;
            if (next is null)
                throw new ModelSurgeryException($"No module '{path}' in the model: '{(walked.Length == 0 ? "<root>" : walked)}' has no child '{part}' (children: {string.Join(", ", Children(current).Keys)}).");
            current = next;
            walked = walked.Length == 0 ? part : walked + "." + part;
        }
        return current;
    }

    /// <summary>Whether a module exists at the path.</summary>
    public bool Contains(string path)
    {
        try { Get(path); return true; }
        catch (ModelSurgeryException) { return false; }
    }

    /// <summary>
    /// Replaces the module at <paramref name="path"/> with <paramref name="replacement"/>, in the
    /// parent's fields and in its registered children, and returns the module it replaced. The
    /// replacement is recorded so that <see cref="Restore"/> or <see cref="RestoreAll"/> can undo it.
    /// </summary>
    /// <exception cref="ModelSurgeryException">The path does not exist, or the parent holds the child in a way that cannot be changed safely.</exception>
    public nn.Module Replace(string path, nn.Module replacement)
    {
        (nn.Module parent, string name) = ParentOf(path);
        nn.Module original = Get(path);
        Swap(parent, name, original, replacement, path);
        _replacements.Push(new Replacement(path, parent, name, original, replacement));
        return original;
    }

    /// <summary>Undoes the replacement made at <paramref name="path"/> and returns the wrapper that was removed.</summary>
    public nn.Module Restore(string path)
    {
        Replacement? found = _replacements.FirstOrDefault(r => r.Path == path)
            ?? throw new ModelSurgeryException($"No replacement was made at '{path}'.");
        Undo(found);
        var rest = _replacements.Where(r => !ReferenceEquals(r, found)).Reverse().ToList();
        _replacements.Clear();
        foreach (Replacement r in rest) _replacements.Push(r);
        return found.Wrapper;
    }

    /// <summary>Undoes every replacement, newest first, and returns the removed wrappers.</summary>
    public IReadOnlyList<nn.Module> RestoreAll()
    {
        var removed = new List<nn.Module>();
        while (_replacements.Count > 0)
        {
            Replacement r = _replacements.Pop();
            Undo(r);
            removed.Add(r.Wrapper);
        }
        return removed;
    }

    /// <summary>The paths currently replaced, oldest first.</summary>
    public IReadOnlyList<string> ReplacedPaths => _replacements.Reverse().Select(r => r.Path).ToList();

    // Puts back what the wrapper wraps. Where methods are combined on one module (contract 1.2), the wrapper may
    // have been wrapped in turn by another surgeon's tuner layer: it is then taken out of that chain instead, and
    // a tuner layer's current base is put back, since a layer under it may have been taken out since.
    private static void Undo(Replacement r)
    {
        nn.Module inner = r.Wrapper is TunerLayer wrapper ? wrapper.BaseLayer : r.Original;
        nn.Module current = Children(r.Parent).TryGetValue(r.Name, out nn.Module? child) ? child : r.Wrapper;
        if (ReferenceEquals(current, r.Wrapper))
        {
            Swap(r.Parent, r.Name, r.Wrapper, inner, r.Path);
            return;
        }
        for (nn.Module m = current; m is TunerLayer outer; m = outer.BaseLayer)
        {
            if (!ReferenceEquals(outer.BaseLayer, r.Wrapper)) continue;
            outer.ReplaceBaseLayer(inner as nn.Module<Tensor, Tensor>
                ?? throw new ModelSurgeryException($"'{r.Path}': the {outer.GetType().Name} there wraps a replacement whose original module is not a Module<Tensor, Tensor>; it cannot be taken out of the chain."));
            return;
        }
        throw new ModelSurgeryException($"'{r.Path}': the module there ({current.GetType().Name}) is neither the replacement made nor a chain of tuner layers holding it; something else replaced it since.");
    }

    private (nn.Module Parent, string Name) ParentOf(string path)
    {
        int dot = path.LastIndexOf('.');
        return dot < 0 ? (Root, path) : (Get(path[..dot]), path[(dot + 1)..]);
    }

    private static void Swap(nn.Module parent, string name, nn.Module current, nn.Module replacement, string path)
    {
        // A ModuleList keeps its children in a list its forward enumerates: replace through its indexer.
        if (ModuleListElementType(parent) is { } elementType && int.TryParse(name, out int index))
        {
            if (!elementType.IsInstanceOfType(replacement))
                throw new ModelSurgeryException($"'{path}': the ModuleList holds {elementType.Name} items, which cannot hold a {replacement.GetType().Name}. Wrap a module inside the item instead.");
            var indexer = parent.GetType().GetProperty("Item", [typeof(int)])!;
            if (!ReferenceEquals(indexer.GetValue(parent, [index]), current))
                throw new ModelSurgeryException($"'{path}': the ModuleList does not hold the expected module at index {index}.");
            indexer.SetValue(parent, replacement, [index]);
            SetRegistered(parent, name, replacement);
            return;
        }

        // Plain modules: every field that refers to the child (on the parent's type or a base
        // type), then the registered entry. Fields are found by reference, not by name, since a
        // module may name its field differently from its registration.
        var fields = new List<FieldInfo>();
        for (Type? t = parent.GetType(); t is not null && t != typeof(object); t = t.BaseType)
            foreach (FieldInfo f in t.GetFields(InstanceFields))
                if (!f.FieldType.IsValueType && ReferenceEquals(f.GetValue(parent), current)) fields.Add(f);

        bool isDictContainer = IsModuleDict(parent);
        if (fields.Count == 0 && !isDictContainer)
            throw new ModelSurgeryException($"'{path}': the parent {parent.GetType().Name} registers this child but no field refers to it, so its forward could not call a replacement (a lambda or local capture?). Hold the child in a field.");
        foreach (FieldInfo f in fields)
        {
            if (!f.FieldType.IsInstanceOfType(replacement))
                throw new ModelSurgeryException($"'{path}': field '{f.Name}' of {f.DeclaringType?.Name} is declared as {f.FieldType.Name}, which cannot hold a {replacement.GetType().Name}. Declare it as Module<Tensor, Tensor> (or nn.Module) so that tuners can wrap it.");
        }
        // Readonly fields are set by reflection on purpose: module fields are readonly by
        // convention in TorchSharp, and surgery is the one sanctioned place that changes them.
        foreach (FieldInfo f in fields) f.SetValue(parent, replacement);
        SetRegistered(parent, name, replacement);
    }

    private static void SetRegistered(nn.Module parent, string name, nn.Module replacement)
    {
        var dict = (IDictionary<string, nn.Module>)SubmodulesField.GetValue(parent)!;
        if (!dict.ContainsKey(name)) throw new ModelSurgeryException($"'{name}' is not a registered child of {parent.GetType().Name}.");
        dict[name] = replacement;
    }

    private static IReadOnlyDictionary<string, nn.Module> Children(nn.Module module) =>
        module.named_children().ToDictionary(c => c.name, c => c.module);

    private static Type? ModuleListElementType(nn.Module module)
    {
        for (Type? t = module.GetType(); t is not null; t = t.BaseType)
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(TorchSharp.Modules.ModuleList<>)) return t.GetGenericArguments()[0];
        return null;
    }

    private static bool IsModuleDict(nn.Module module) =>
        module.GetType().IsGenericType && module.GetType().GetGenericTypeDefinition() == typeof(TorchSharp.Modules.ModuleDict<>);

    private sealed record Replacement(string Path, nn.Module Parent, string Name, nn.Module Original, nn.Module Wrapper);
}
