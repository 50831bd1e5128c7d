using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>
/// Keys and values of every layer, preallocated for <see cref="Capacity"/> positions
/// ([batch, kv_heads, capacity, head_dim] per layer), so decoding writes in place and never regrows.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

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
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _keys[i] = torch.zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device);
            _values[i] = torch.zeros([batch, kvHeads, capacity, headDim], dtype: dtype, device: device);
        }
    }

    /// <summary>Positions the cache can hold.</summary>
    public long Capacity { get; }

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

    /// <summary>Positions filled so far (set by the model after each forward).</summary>
    public long Length { get; internal set; }

    /// <summary>
    /// Writes <paramref name="key"/> and <paramref name="value"/> ([batch, kv_heads, n, head_dim]) at
    /// <paramref name="start"/> and returns views of positions 0 .. start + n (no copy). Recorded by autograd
    /// when gradients are on and the key or value requires one (a prefix being trained).
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, long start, Tensor key, Tensor value)
    {
        long n = key.shape[2];
        if (start + n > Capacity)
            throw new InvalidOperationException($"The KV cache holds {Capacity} positions; writing {n} at position {start} would overflow it. Create a larger cache.");
        if (key.shape[0] != Batch) throw new InvalidOperationException($"The KV cache was made for batch {Batch}, not {key.shape[0]}.");
        // Decoding writes outside autograd; a trained prefix (prefix tuning's past key values) must stay in the graph,
        // so its writes are recorded (the buffer then carries the gradient to the prefix, and to the keys after it).
        bool record = torch.is_grad_enabled() && (key.requires_grad || value.requires_grad);
        using (record ? null : torch.no_grad())
        {
            using (Tensor k = _keys[layer].narrow(2, start, n)) k.copy_(key);
            using (Tensor v = _values[layer].narrow(2, start, n)) v.copy_(value);
        }
        return (_keys[layer].narrow(2, 0, start + n), _values[layer].narrow(2, 0, start + n));
    }

    /// <summary>Forgets the content (the memory is kept).</summary>
    public void Reset() => Length = 0;

    /// <summary>Frees the buffers.</summary>
    public void Dispose()
    {
        IsDisposed = true;
        foreach (Tensor t in _keys) t.Dispose();
        foreach (Tensor t in _values) t.Dispose();
    }
}
