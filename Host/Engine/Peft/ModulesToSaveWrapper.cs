using PeftHost.Abstractions.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Peft;

/// <summary>
/// PEFT's <c>ModulesToSaveWrapper</c>: a whole module (a classifier head, an lm_head) trained as a
/// full copy per adapter. Parameters read <c>&lt;path&gt;.original_module.weight</c> and
/// <c>&lt;path&gt;.modules_to_save.&lt;adapter&gt;.weight</c>, as in PEFT; files store the copy under
/// the original name (<c>&lt;path&gt;.weight</c>).
/// </summary>
public sealed class ModulesToSaveWrapper : nn.Module<Tensor, Tensor>
{
    private const string OriginalName = "original_module";
    private readonly nn.Module<Tensor, Tensor> original_module;
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> modules_to_save = new();

    /// <summary>Wraps <paramref name="original"/>, found at <paramref name="path"/>.</summary>
    public ModulesToSaveWrapper(nn.Module<Tensor, Tensor> original, string path) : base(nameof(ModulesToSaveWrapper))
    {
        Path = path;
        original_module = original;
        register_module(OriginalName, original_module);
        register_module("modules_to_save", modules_to_save);
    }

    /// <summary>The wrapped module's path in the model.</summary>
    public string Path { get; }

    /// <summary>The original module, untouched.</summary>
    public nn.Module<Tensor, Tensor> Original => original_module;

    /// <summary>The adapters holding a copy.</summary>
    public IReadOnlyCollection<string> Adapters => modules_to_save.Keys;

    /// <summary>The adapter whose copy the forward pass uses, or null for the original.</summary>
    public string? ActiveAdapter { get; set; }

    /// <summary>When true the original module serves (adapters disabled).</summary>
    public bool Disabled { get; set; }

    /// <summary>The copy of an adapter.</summary>
    public nn.Module<Tensor, Tensor> CopyOf(string adapter) => modules_to_save[adapter];

    /// <summary>Adds a trainable copy of the original for an adapter.</summary>
    public void AddAdapter(string adapter) => modules_to_save.Add(adapter, ModuleCloner.Clone(original_module, Path));

    /// <summary>Removes an adapter's copy.</summary>
    public void DeleteAdapter(string adapter) => modules_to_save.Remove(adapter);

    /// <summary>The copy's tensors by the original module's key names (<c>&lt;path&gt;.weight</c>).</summary>
    public IEnumerable<(string Key, Tensor Value)> AdapterTensors(string adapter) =>
        modules_to_save[adapter].named_parameters().Select(p => (Path + "." + p.name, (Tensor)p.parameter));

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (!Disabled && AdapterRouting.Current is { } rows) return MixedBatchForward(input, rows);
        return !Disabled && ActiveAdapter is { } a && modules_to_save.Contains(a) ? modules_to_save[a].forward(input) : original_module.forward(input);
    }

    // PEFT's ModulesToSaveWrapper._mixed_batch_forward: each row through its adapter's copy (the original for the base or an adapter without one).
    private Tensor MixedBatchForward(Tensor input, IReadOnlyList<string> rows)
    {
        if (rows.Count != input.shape[0])
            throw new ArgumentException($"adapter_names has {rows.Count} entries for a batch of {input.shape[0]} rows.");
        using var scope = NewDisposeScope();
        Tensor? output = null;
        foreach (var group in rows.Select((name, row) => (name, row)).GroupBy(g => modules_to_save.Contains(g.name) ? g.name : null))
        {
            nn.Module<Tensor, Tensor> module = group.Key is { } name ? modules_to_save[name] : original_module;
            if (output is null && group.Count() == rows.Count) return scope.MoveToOuter(module.forward(input));
            using Tensor index = tensor(group.Select(g => (long)g.row).ToArray(), device: input.device);
            Tensor y = module.forward(input.index_select(0, index));
            output ??= zeros([input.shape[0], .. y.shape[1..]], dtype: y.dtype, device: y.device);
            output.index_copy_(0, index, y);
        }
        return scope.MoveToOuter(output!);
    }

    /// <summary>Frees the copies only: the original module belongs to the model.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) _internal_submodules.Remove(OriginalName);
        base.Dispose(disposing);
    }
}
