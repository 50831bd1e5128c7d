using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Keys and values of every layer, preallocated for <see cref="Capacity"/> positions
/// ([batch, kv_heads, capacity, head_dim] per layer), so decoding writes in place and never regrows.
/// Each row keeps its own length (<see cref="RowLength"/>): a batch of sequences at different positions
/// (continuous batching) writes every row at its own position (the models' per-row forward).
/// </summary>
public sealed class KvCache : IDisposable
{
    private Tensor[] _keys;
    private Tensor[] _values;
    // Shared with the views of this cache's rows (Rows), offset by the view's first row.
    private readonly long[] _rowLengths;
    private readonly long _rowOffset;
    private readonly bool _isView;
    // While a per-row forward runs: where each row's new positions go ([batch, kv_heads, n, head_dim], expanded) and the keys they reach.
    private Tensor? _rowIndex;
    private long _rowEnd;

    /// <summary>Allocates the cache.</summary>
    /// <exception cref="ModelInputException">A size is below 1 (nothing is allocated).</exception>
    public KvCache(int layers, long batch, long kvHeads, long capacity, long headDim, ScalarType dtype, Device device)
    {
        foreach ((string name, long value) in new[] { ("layers", (long)layers), ("batch", batch), ("kvHeads", kvHeads), ("capacity", capacity), ("headDim", headDim) })
            if (value < 1) throw new ModelInputException(name, $"A KV cache needs {name} of at least 1, not {value}.");
        Capacity = capacity;
        Batch = batch;
        Layers = layers;
        KvHeads = kvHeads;
        HeadDim = headDim;
        DType = dtype;
        Device = device;
        _rowLengths = new long[batch];
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _keys[i] = torch.zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device);
            _values[i] = torch.zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device);
        }
    }

    // A view of rows start .. start + count of another cache: same storage, same row lengths.
    private KvCache(KvCache parent, long start, long count)
    {
        Capacity = parent.Capacity;
        Batch = count;
        Layers = parent.Layers;
        KvHeads = parent.KvHeads;
        HeadDim = parent.HeadDim;
        DType = parent.DType;
        Device = parent.Device;
        _rowLengths = parent._rowLengths;
        _rowOffset = parent._rowOffset + start;
        _isView = true;
        _keys = [.. parent._keys.Select(k => k.narrow(0, start, count))];
        _values = [.. parent._values.Select(v => v.narrow(0, start, count))];
    }

    /// <summary>Positions the cache can hold.</summary>
    public long Capacity { get; private set; }

    /// <summary>Batch size.</summary>
    public long Batch { get; }

    /// <summary>Layers held.</summary>
    public int Layers { get; }

    /// <summary>Key/value heads per layer.</summary>
    public long KvHeads { get; }

    /// <summary>Size of one head.</summary>
    public long HeadDim { get; }

    /// <summary>The keys' and values' dtype.</summary>
    public ScalarType DType { get; }

    /// <summary>Where the buffers live.</summary>
    public Device Device { get; }

    /// <summary>Whether <see cref="Dispose"/> ran (the buffers are gone).</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Positions filled so far: the longest row (set by the model after each forward; setting it sets every row).</summary>
    public long Length
    {
        get
        {
            long longest = 0;
            for (long i = 0; i < Batch; i++) longest = Math.Max(longest, _rowLengths[_rowOffset + i]);
            return longest;
        }
        internal set
        {
            for (long i = 0; i < Batch; i++) _rowLengths[_rowOffset + i] = value;
        }
    }

    /// <summary>Positions filled in one row.</summary>
    public long RowLength(long row)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Batch);
        return _rowLengths[_rowOffset + row];
    }

    internal void SetRowLength(long row, long length) => _rowLengths[_rowOffset + row] = length;

    /// <summary>
    /// Rows <paramref name="start"/> .. start + count as a cache of batch <paramref name="count"/> over the same
    /// memory (no copy): a forward of one sequence into its own row of a batch cache. Dispose it after use;
    /// it is invalid after <see cref="Resize"/>.
    /// </summary>
    public KvCache Rows(long start, long count)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (start < 0 || count < 1 || start + count > Batch)
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows {start} .. {start + count - 1} are outside the cache's {Batch} rows.");
        return new KvCache(this, start, count);
    }

    /// <summary>
    /// Writes <paramref name="key"/> and <paramref name="value"/> ([batch, kv_heads, n, head_dim]) at
    /// <paramref name="start"/> and returns views of positions 0 .. start + n (no copy). During a per-row
    /// forward (<see cref="BeginRows"/>) each row is written at its own position instead and
    /// <paramref name="start"/> is not used; the views then reach the furthest row.
    /// Recorded by autograd when gradients are on and the key or value requires one (a prefix being trained).
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, long start, Tensor key, Tensor value)
    {
        long n = key.shape[2];
        if (key.shape[0] != Batch) throw new InvalidOperationException($"The KV cache was made for batch {Batch}, not {key.shape[0]}.");
        if (_rowIndex is not null)
        {
            if (_rowIndex.shape[2] != n) throw new InvalidOperationException($"The per-row forward writes {_rowIndex.shape[2]} positions per row, not {n}.");
            using (Recording(key, value) ? null : torch.no_grad())
            {
                _keys[layer].scatter_(2, _rowIndex, key);
                _values[layer].scatter_(2, _rowIndex, value);
            }
            return (_keys[layer].narrow(2, 0, _rowEnd), _values[layer].narrow(2, 0, _rowEnd));
        }
        if (start + n > Capacity)
            throw new InvalidOperationException($"The KV cache holds {Capacity} positions; writing {n} at position {start} would overflow it. Create a larger cache.");
        // Decoding writes outside autograd; a trained prefix (prefix tuning's past key values) must stay in the graph,
        // so its writes are recorded (the buffer then carries the gradient to the prefix, and to the keys after it).
        using (Recording(key, value) ? null : torch.no_grad())
        {
            using (Tensor k = _keys[layer].narrow(2, start, n)) k.copy_(key);
            using (Tensor v = _values[layer].narrow(2, start, n)) v.copy_(value);
        }
        return (_keys[layer].narrow(2, 0, start + n), _values[layer].narrow(2, 0, start + n));
    }

    private static bool Recording(Tensor key, Tensor value) => torch.is_grad_enabled() && (key.requires_grad || value.requires_grad);

    /// <summary>
    /// Until the returned scope is disposed, <see cref="Append"/> writes row i's <paramref name="count"/>
    /// new positions at <paramref name="rowStarts"/>[i] .. + count (the models' per-row forward sets this).
    /// </summary>
    internal IDisposable BeginRows(IReadOnlyList<long> rowStarts, long count)
    {
        if (_rowIndex is not null) throw new InvalidOperationException("A per-row forward is already writing this KV cache.");
        using (NewDisposeScope())
        {
            Tensor starts = torch.tensor(rowStarts.ToArray(), dtype: ScalarType.Int64, device: Device);
            Tensor positions = starts.unsqueeze(1) + torch.arange(count, dtype: ScalarType.Int64, device: Device).unsqueeze(0);
            _rowIndex = positions.view(Batch, 1, count, 1).expand(Batch, KvHeads, count, HeadDim).DetachFromDisposeScope();
        }
        _rowEnd = rowStarts.Max() + count;
        return new RowScope(this);
    }

    /// <summary>Copies row <paramref name="from"/>'s first <paramref name="length"/> positions (every layer) into row <paramref name="to"/>, and its length.</summary>
    public void MoveRow(long from, long to, long length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (from < 0 || from >= Batch || to < 0 || to >= Batch) throw new ArgumentOutOfRangeException(nameof(from), $"Rows {from} and {to} must be in [0, {Batch}).");
        if (length < 0 || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length), $"{length} positions do not fit the cache's {Capacity}.");
        if (from == to) return;
        if (length > 0)
        {
            using (torch.no_grad())
            {
                foreach (Tensor[] buffers in new[] { _keys, _values })
                    foreach (Tensor t in buffers)
                    {
                        using Tensor source = t.narrow(0, from, 1).narrow(2, 0, length);
                        using Tensor target = t.narrow(0, to, 1).narrow(2, 0, length);
                        target.copy_(source);
                    }
            }
        }
        _rowLengths[_rowOffset + to] = _rowLengths[_rowOffset + from];
    }

    /// <summary>Grows (or shrinks) every buffer to <paramref name="capacity"/> positions, keeping what fits.</summary>
    /// <exception cref="InvalidOperationException">The cache is a view of another's rows.</exception>
    public void Resize(long capacity)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (_isView) throw new InvalidOperationException("A view of a cache's rows cannot be resized; resize the cache itself.");
        if (capacity < 1) throw new ModelInputException(nameof(capacity), $"A KV cache needs capacity of at least 1, not {capacity}.");
        if (capacity == Capacity) return;
        long kept = Math.Min(capacity, Capacity);
        foreach (Tensor[] buffers in new[] { _keys, _values })
            for (int i = 0; i < buffers.Length; i++)
            {
                Tensor grown = torch.zeros([Batch, KvHeads, capacity, HeadDim], dtype: DType, device: Device);
                using (torch.no_grad())
                using (Tensor target = grown.narrow(2, 0, kept))
                using (Tensor source = buffers[i].narrow(2, 0, kept))
                    target.copy_(source);
                buffers[i].Dispose();
                buffers[i] = grown;
            }
        Capacity = capacity;
        for (long i = 0; i < Batch; i++) _rowLengths[i] = Math.Min(_rowLengths[i], capacity);
    }

    /// <summary>Forgets the content (the memory is kept).</summary>
    public void Reset() => Length = 0;

    /// <summary>Frees the buffers (a view frees only its handles; the memory belongs to the cache it views).</summary>
    public void Dispose()
    {
        if (IsDisposed) return;
        IsDisposed = true;
        _rowIndex?.Dispose();
        foreach (Tensor t in _keys) t.Dispose();
        foreach (Tensor t in _values) t.Dispose();
    }

    private sealed class RowScope(KvCache cache) : IDisposable
    {
        public void Dispose()
        {
            cache._rowIndex?.Dispose();
            cache._rowIndex = null;
        }
    }
}
