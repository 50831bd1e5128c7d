using PeftHost.Formats.Gguf;
using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Llama;

/// <summary>
/// A Llama-family model from a GGUF file, run entirely on a Vulkan device: weights uploaded once
/// (q|k|v and gate|up fused into one matrix each), a preallocated KV cache in device memory,
/// prefill in chunks through the tiled matrix-matrix kernels and decode through the matrix-vector
/// kernels. Every step (a prefill chunk, or one decoded token with its sampling) is one command
/// buffer recorded by <see cref="LlamaGraph"/> and submitted once.
/// </summary>
public sealed class LlamaDeviceModel : IDisposable
{
    private readonly VulkanContext _context;
    private readonly LlamaLayerWeights[] _layers;
    private readonly VulkanBuffer[] _kCache;
    private readonly VulkanBuffer[] _vCache;
    private readonly List<IDisposable> _owned = [];
    private readonly Dictionary<string, LoraGgufAdapter> _adapters = new(StringComparer.Ordinal);
    private (string Name, float Scale)[] _applied = [];
    private bool _disposed;

    /// <summary>Loads the weights of <paramref name="file"/> onto the device of <paramref name="context"/>.</summary>
    /// <param name="context">The device (not owned).</param>
    /// <param name="file">A GGUF file of architecture llama.</param>
    /// <param name="contextSize">KV cache capacity in positions (default: the model's context length, at most 2048).</param>
    /// <param name="maxBatch">Tokens per prefill command buffer.</param>
    public LlamaDeviceModel(VulkanContext context, GgufFile file, int? contextSize = null, int maxBatch = 64)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatch);
        _context = context;
        Parameters = LlamaHyperParameters.Read(file);
        LlamaHyperParameters p = Parameters;
        Capacity = Math.Min(contextSize ?? Math.Min(p.ContextLength, 2048), 3072);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Capacity, nameof(contextSize));
        MaxBatch = Math.Min(maxBatch, Capacity);
        _layers = new LlamaLayerWeights[p.Layers];
        _kCache = new VulkanBuffer[p.Layers];
        _vCache = new VulkanBuffer[p.Layers];
        try
        {
            GgufTensorInfo embd = file.GetTensor("token_embd.weight");
            Embedding = Track(DeviceMatrix.Load(context, file, "token_embd.weight"));
            OutputNorm = Track(UploadFloats(file, "output_norm.weight", p.Hidden));
            // Tied embeddings: llama.cpp falls back to token_embd when output.weight is absent.
            Output = file.Tensors.Any(t => t.Name == "output.weight") ? Track(DeviceMatrix.Load(context, file, "output.weight")) : Embedding;
            if (Output.Rows != p.VocabSize || embd.Columns != (ulong)p.Hidden)
            {
                throw new GgufFormatException(file.FileName, "output.weight", $"has {Output.Rows} rows, the vocabulary {p.VocabSize}.");
            }
            ulong cacheBytes = (ulong)Capacity * (ulong)(p.KvHeads * p.HeadDim) * 4;
            for (int i = 0; i < p.Layers; i++)
            {
                string b = $"blk.{i}.";
                _layers[i] = Track(new LlamaLayerWeights
                {
                    AttnNorm = UploadFloats(file, b + "attn_norm.weight", p.Hidden),
                    Qkv = DeviceMatrix.Load(context, file, b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"),
                    Output = DeviceMatrix.Load(context, file, b + "attn_output.weight"),
                    FfnNorm = UploadFloats(file, b + "ffn_norm.weight", p.Hidden),
                    GateUp = DeviceMatrix.Load(context, file, b + "ffn_gate.weight", b + "ffn_up.weight"),
                    Down = DeviceMatrix.Load(context, file, b + "ffn_down.weight"),
                });
                CheckShape(file, _layers[i], i);
                _kCache[i] = Track(context.CreateBuffer(cacheBytes, $"K cache {i}"));
                _vCache[i] = Track(context.CreateBuffer(cacheBytes, $"V cache {i}"));
            }
            Graph = new LlamaGraph(context, this);
            _owned.Add(Graph);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The hyper-parameters.</summary>
    public LlamaHyperParameters Parameters { get; }

    /// <summary>KV cache capacity in positions.</summary>
    public int Capacity { get; }

    /// <summary>Tokens per prefill command buffer.</summary>
    public int MaxBatch { get; }

    /// <summary>The weight type of the attention projections (the file's main type).</summary>
    public GgmlType WeightType => _layers[0].Qkv.Type;

    /// <summary>Bytes of weights on the device.</summary>
    public long WeightBytes => (long)Embedding.Buffer.Size + (ReferenceEquals(Output, Embedding) ? 0 : (long)Output.Buffer.Size)
        + _layers.Sum(l => (long)(l.Qkv.Buffer.Size + l.Output.Buffer.Size + l.GateUp.Buffer.Size + l.Down.Buffer.Size));

    /// <summary>Dispatches recorded by the last step (a prefill chunk or one decoded token with its sampling).</summary>
    public int LastDispatchCount => Graph.LastDispatchCount;

    internal VulkanContext Context => _context;
    internal DeviceMatrix Embedding { get; } = null!;
    internal VulkanBuffer OutputNorm { get; } = null!;
    internal DeviceMatrix Output { get; } = null!;
    internal IReadOnlyList<LlamaLayerWeights> Layers => _layers;
    internal IReadOnlyList<VulkanBuffer> KCache => _kCache;
    internal IReadOnlyList<VulkanBuffer> VCache => _vCache;
    internal LlamaGraph Graph { get; } = null!;

    /// <summary>The GGUF-LoRA adapters loaded beside the base.</summary>
    public IReadOnlyCollection<string> AdapterNames => _adapters.Keys;

    /// <summary>The adapters applied now and their scales.</summary>
    public IReadOnlyList<(string Name, float Scale)> AppliedAdapters => _applied;

    /// <summary>
    /// Loads a GGUF-LoRA adapter (<see cref="LoraGgufAdapter"/>) for this model, checking that every
    /// pair names one of its weights with matching shapes; it applies once <see cref="SetAdapters"/> selects it.
    /// </summary>
    /// <exception cref="GgufFormatException">A pair names no weight of this model or does not fit it.</exception>
    public void LoadAdapter(string name, GgufFile file)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(name);
        LoraGgufAdapter adapter = LoraGgufAdapter.Read(file, name);
        foreach ((string tensor, LoraPair pair) in adapter.Pairs)
        {
            (int rows, int cols) = WeightShape(tensor) ?? throw new GgufFormatException(file.FileName, tensor, "names no weight the Vulkan forward multiplies by (attn_q|k|v|output, ffn_gate|up|down, output).");
            if (pair.Out != rows || pair.In != cols)
                throw new GgufFormatException(file.FileName, tensor, $"lora_b x lora_a is [{pair.Out}, {pair.In}]; the base weight is [{rows}, {cols}].");
        }
        _adapters[name] = adapter;
    }

    /// <summary>
    /// Applies exactly these adapters, unmerged (as llama.cpp: each pair adds scale x alpha / r x B A x to
    /// its weight's product); empty = the base. The fused low-rank terms are rebuilt and uploaded only when the set changes.
    /// </summary>
    public void SetAdapters(IReadOnlyList<(string Name, float Scale)> adapters)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.SequenceEqual(_applied)) return;
        var chosen = new List<(LoraGgufAdapter Adapter, float Scale)>();
        foreach ((string name, float scale) in adapters)
        {
            if (!_adapters.TryGetValue(name, out LoraGgufAdapter? a))
                throw new KeyNotFoundException($"adapter '{name}' is not loaded (adapters: {string.Join(", ", _adapters.Keys)}).");
            if (!float.IsFinite(scale)) throw new ArgumentException($"adapter '{name}': scale {scale} is not a finite number.", nameof(adapters));
            chosen.Add((a, scale));
        }
        LlamaHyperParameters p = Parameters;
        int q = p.Heads * p.HeadDim, kv = p.KvHeads * p.HeadDim;
        DeviceLowRank? Build(DeviceMatrix m, params (string Tensor, int RowOffset)[] parts)
        {
            var terms = new List<(LoraPair, float, int)>();
            foreach ((LoraGgufAdapter a, float s) in chosen)
                foreach ((string tensor, int offset) in parts)
                    if (a.Pairs.TryGetValue(tensor, out LoraPair? pair))
                        terms.Add((pair, a.Alpha != 0 ? s * a.Alpha / pair.Rank : s, offset));
            return DeviceLowRank.Stack(_context, terms, m.Rows, m.Cols, MaxBatch);
        }
        for (int i = 0; i < p.Layers; i++)
        {
            string b = $"blk.{i}.";
            LlamaLayerWeights l = _layers[i];
            l.Qkv.SetLowRank(Build(l.Qkv, (b + "attn_q.weight", 0), (b + "attn_k.weight", q), (b + "attn_v.weight", q + kv)));
            l.Output.SetLowRank(Build(l.Output, (b + "attn_output.weight", 0)));
            l.GateUp.SetLowRank(Build(l.GateUp, (b + "ffn_gate.weight", 0), (b + "ffn_up.weight", p.FeedForward)));
            l.Down.SetLowRank(Build(l.Down, (b + "ffn_down.weight", 0)));
        }
        if (!ReferenceEquals(Output, Embedding)) Output.SetLowRank(Build(Output, ("output.weight", 0)));
        _applied = [.. adapters];
    }

    // The [rows, cols] of a base weight by its GGUF name, or null for a tensor the forward has no product for.
    private (int Rows, int Cols)? WeightShape(string tensor)
    {
        LlamaHyperParameters p = Parameters;
        if (tensor == "output.weight") return ReferenceEquals(Output, Embedding) ? null : (p.VocabSize, p.Hidden);
        string[] parts = tensor.Split('.');
        if (parts.Length != 4 || parts[0] != "blk" || !int.TryParse(parts[1], out int layer) || layer < 0 || layer >= p.Layers || parts[3] != "weight") return null;
        int q = p.Heads * p.HeadDim, kv = p.KvHeads * p.HeadDim;
        return parts[2] switch
        {
            "attn_q" => (q, p.Hidden),
            "attn_k" or "attn_v" => (kv, p.Hidden),
            "attn_output" => (p.Hidden, q),
            "ffn_gate" or "ffn_up" => (p.FeedForward, p.Hidden),
            "ffn_down" => (p.Hidden, p.FeedForward),
            _ => null,
        };
    }

    /// <summary>
    /// The logits of every position of <paramref name="ids"/> (from position 0, the cache is
    /// overwritten): float32 [ids.Length, vocab], row-major.
    /// </summary>
    public float[] ComputeLogits(ReadOnlySpan<int> ids)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckIds(ids, 0);
        int vocab = Parameters.VocabSize;
        var logits = new float[(long)ids.Length * vocab];
        for (int start = 0; start < ids.Length; start += MaxBatch)
        {
            int n = Math.Min(MaxBatch, ids.Length - start);
            Graph.RunChunk(ids.Slice(start, n), start, logits.AsSpan(start * vocab, n * vocab));
        }
        return logits;
    }

    /// <summary>Runs the prompt from position 0 and samples the token after it on the device.</summary>
    public int Prefill(ReadOnlySpan<int> prompt, int topK, float temperature, float uniform)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (prompt.IsEmpty) throw new ArgumentException("The prompt must hold at least one token.", nameof(prompt));
        CheckIds(prompt, 0);
        int start = 0;
        for (; start + MaxBatch < prompt.Length; start += MaxBatch)
        {
            Graph.RunChunk(prompt.Slice(start, MaxBatch), start, []);
        }
        return Graph.RunLastChunk(prompt[start..], start, topK, temperature, uniform);
    }

    /// <summary>
    /// Decodes one step: the token sampled by the previous step (still on the device) at
    /// <paramref name="position"/>, and samples the next one; returns it (the only read-back).
    /// </summary>
    public int DecodeStep(int position, int topK, float temperature, float uniform)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (position <= 0 || position >= Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(position), position, $"Decode positions run from 1 to the cache capacity {Capacity} - 1.");
        }
        return Graph.RunDecode(position, topK, temperature, uniform);
    }

    private void CheckIds(ReadOnlySpan<int> ids, int start)
    {
        if (start + ids.Length > Capacity)
        {
            throw new ArgumentException($"{start + ids.Length} positions exceed the KV cache capacity {Capacity}.");
        }
        foreach (int id in ids)
        {
            if (id < 0 || id >= Parameters.VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token ids run from 0 to {Parameters.VocabSize - 1}.");
        }
    }

    private void CheckShape(GgufFile file, LlamaLayerWeights l, int i)
    {
        LlamaHyperParameters p = Parameters;
        int qkvRows = (p.Heads + 2 * p.KvHeads) * p.HeadDim;
        if (l.Qkv.Rows != qkvRows || l.Qkv.Cols != p.Hidden || l.Output.Rows != p.Hidden || l.Output.Cols != p.Heads * p.HeadDim
            || l.GateUp.Rows != 2 * p.FeedForward || l.GateUp.Cols != p.Hidden || l.Down.Rows != p.Hidden || l.Down.Cols != p.FeedForward)
        {
            throw new GgufFormatException(file.FileName, $"blk.{i}", "tensor shapes do not match the llama.* hyper-parameters.");
        }
    }

    private VulkanBuffer UploadFloats(GgufFile file, string name, int length)
    {
        float[] values = file.ReadTensorFloats(name);
        if (values.Length != length)
        {
            throw new GgufFormatException(file.FileName, name, $"has {values.Length} values, {length} expected.");
        }
        return _context.Upload<float>(values, name);
    }

    private T Track<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }
        _owned.Clear();
    }
}
