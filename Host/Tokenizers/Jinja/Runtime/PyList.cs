namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>A Python list or tuple. Templates cannot change it (the immutable sandbox); only builders fill it.</summary>
internal sealed class PyList(List<object?> items, bool isTuple = false)
{
    public static PyList EmptyTuple { get; } = new([], isTuple: true);

    public List<object?> Items { get; } = items;

    /// <summary>True for a tuple: printed with parentheses, never equal to a list.</summary>
    public bool IsTuple { get; } = isTuple;

    public int Count => Items.Count;

    public object? this[int index] => Items[index];

    public static PyList Tuple(params object?[] items) => new([.. items], isTuple: true);
}
