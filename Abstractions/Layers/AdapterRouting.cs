namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Mixed-batch inference (PEFT's <c>adapter_names</c>): which adapter serves each row of the batch
/// in the forward pass running on this async flow. <see cref="BaseModel"/> means no adapter.
/// The host sets it around a forward pass; layers read it.
/// </summary>
public static class AdapterRouting
{
    /// <summary>PEFT's name for "no adapter" in <c>adapter_names</c>.</summary>
    public const string BaseModel = "__base__";

    private static readonly AsyncLocal<string[]?> RowAdapters = new();

    /// <summary>The adapter of each batch row, or null when the active adapters serve every row.</summary>
    public static IReadOnlyList<string>? Current => RowAdapters.Value;

    /// <summary>Routes rows to adapters until the returned scope is disposed.</summary>
    public static IDisposable Begin(IReadOnlyList<string> adapterPerRow)
    {
        string[]? previous = RowAdapters.Value;
        RowAdapters.Value = [.. adapterPerRow];
        return new Scope(previous);
    }

    private sealed class Scope(string[]? previous) : IDisposable
    {
        public void Dispose() => RowAdapters.Value = previous;
    }
}
