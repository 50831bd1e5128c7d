using PeftHost.Vulkan.Kernels;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Vulkan.Llama;

/// <summary>
/// Records the Llama forward into one command buffer per step (ggml-vulkan's graph compute): the
/// activation buffers (sized for the largest prefill chunk), the kernels and the read-back buffer.
/// Per layer: rmsnorm, fused q|k|v product, RoPE + cache store, attention, output product added to
/// the residual, rmsnorm, fused gate|up product, SwiGLU, down product added to the residual.
/// </summary>
internal sealed class LlamaGraph : IDisposable
{
    private readonly LlamaDeviceModel _model;
    private readonly VulkanContext _context;
    private readonly VulkanBuffer _ids, _x, _xn, _qkv, _q, _attn, _gateUp, _act, _lastRow, _logits;
    private readonly VulkanReadback _readback;
    private readonly RmsNormKernel _rmsNorm;
    private readonly RopeKvKernel _ropeKv;
    private readonly AttentionKernel _attention;
    private readonly SwiGluKernel _swiGlu;
    private readonly SampleKernel _sample;
    private readonly GetRowsKernel _getRows;

    public LlamaGraph(VulkanContext context, LlamaDeviceModel model)
    {
        _context = context;
        _model = model;
        LlamaHyperParameters p = model.Parameters;
        ulong b = (ulong)model.MaxBatch * 4;
        var created = new List<VulkanBuffer>();
        VulkanBuffer Make(ulong bytes, string name)
        {
            VulkanBuffer buffer = context.CreateBuffer(bytes, name);
            created.Add(buffer);
            return buffer;
        }
        try
        {
            _ids = Make(b, "ids");
            _x = Make(b * (ulong)p.Hidden, "x");
            _xn = Make(b * (ulong)p.Hidden, "x normed");
            _qkv = Make(b * (ulong)((p.Heads + 2 * p.KvHeads) * p.HeadDim), "qkv");
            _q = Make(b * (ulong)(p.Heads * p.HeadDim), "q");
            _attn = Make(b * (ulong)(p.Heads * p.HeadDim), "attention");
            _gateUp = Make(b * (ulong)(2 * p.FeedForward), "gate|up");
            _act = Make(b * (ulong)p.FeedForward, "swiglu");
            _lastRow = Make((ulong)p.Hidden * 4, "last row");
            _logits = Make(b * (ulong)p.VocabSize, "logits");
            _readback = new VulkanReadback(context, 4);
        }
        catch
        {
            created.ForEach(c => c.Dispose());
            throw;
        }
        _buffers = created;
        _rmsNorm = new RmsNormKernel(context);
        _ropeKv = new RopeKvKernel(context);
        _attention = new AttentionKernel(context, model.Capacity);
        _swiGlu = new SwiGluKernel(context);
        _sample = new SampleKernel(context);
        _getRows = new GetRowsKernel(context, model.Embedding.Type);
    }

    private readonly List<VulkanBuffer> _buffers;

    /// <summary>Dispatches of the last step recorded.</summary>
    public int LastDispatchCount { get; private set; }

    /// <summary>A prefill chunk at <paramref name="pos0"/>; when <paramref name="logits"/> is not empty, the logits of every token are read into it.</summary>
    public void RunChunk(ReadOnlySpan<int> ids, int pos0, Span<float> logits)
    {
        _ids.Upload(ids);
        using VulkanCommandRecorder rec = _context.CreateRecorder();
        RecordLayers(rec, ids.Length, pos0);
        if (!logits.IsEmpty)
        {
            LlamaHyperParameters p = _model.Parameters;
            _rmsNorm.Record(rec, _x, _model.OutputNorm, _xn, ids.Length, p.Hidden, p.RmsEps);
            _model.Output.Record(rec, _xn, _logits, ids.Length, accumulate: false);
        }
        LastDispatchCount = rec.DispatchCount;
        rec.Submit();
        if (!logits.IsEmpty)
        {
            _logits.Download(logits);
        }
    }

    /// <summary>The last prefill chunk: its layers, then the head on its last token and sampling; returns the sampled id.</summary>
    public int RunLastChunk(ReadOnlySpan<int> ids, int pos0, int topK, float temperature, float uniform)
    {
        _ids.Upload(ids);
        using VulkanCommandRecorder rec = _context.CreateRecorder();
        RecordLayers(rec, ids.Length, pos0);
        ulong rowBytes = (ulong)_model.Parameters.Hidden * 4;
        rec.Copy(_x, (ulong)(ids.Length - 1) * rowBytes, _lastRow, 0, rowBytes);
        return Finish(rec, _lastRow, topK, temperature, uniform);
    }

    /// <summary>One decode step at <paramref name="position"/> for the id the previous step left in the ids buffer.</summary>
    public int RunDecode(int position, int topK, float temperature, float uniform)
    {
        using VulkanCommandRecorder rec = _context.CreateRecorder();
        RecordLayers(rec, 1, position);
        return Finish(rec, _x, topK, temperature, uniform);
    }

    private int Finish(VulkanCommandRecorder rec, VulkanBuffer row, int topK, float temperature, float uniform)
    {
        LlamaHyperParameters p = _model.Parameters;
        _rmsNorm.Record(rec, row, _model.OutputNorm, _xn, 1, p.Hidden, p.RmsEps);
        _model.Output.Record(rec, _xn, _logits, 1, accumulate: false);
        _sample.Record(rec, _logits, _ids, p.VocabSize, 0, topK, temperature, uniform);
        rec.CopyToHost(_ids, 0, _readback, 4);
        LastDispatchCount = rec.DispatchCount;
        rec.Submit();
        return _readback.Read<int>()[0];
    }

    private void RecordLayers(VulkanCommandRecorder rec, int tokens, int pos0)
    {
        LlamaHyperParameters p = _model.Parameters;
        _getRows.Record(rec, _model.Embedding.Buffer, _ids, _x, tokens, p.Hidden);
        for (int i = 0; i < p.Layers; i++)
        {
            LlamaLayerWeights l = _model.Layers[i];
            _rmsNorm.Record(rec, _x, l.AttnNorm, _xn, tokens, p.Hidden, p.RmsEps);
            l.Qkv.Record(rec, _xn, _qkv, tokens, accumulate: false);
            _ropeKv.Record(rec, _qkv, _q, _model.KCache[i], _model.VCache[i], tokens, p.Heads, p.KvHeads, p.HeadDim, pos0, p.RopeFreqBase);
            _attention.Record(rec, _q, _model.KCache[i], _model.VCache[i], _attn, tokens, p.Heads, p.KvHeads, p.HeadDim, pos0);
            l.Output.Record(rec, _attn, _x, tokens, accumulate: true);
            _rmsNorm.Record(rec, _x, l.FfnNorm, _xn, tokens, p.Hidden, p.RmsEps);
            l.GateUp.Record(rec, _xn, _gateUp, tokens, accumulate: false);
            _swiGlu.Record(rec, _gateUp, _act, tokens, p.FeedForward);
            l.Down.Record(rec, _act, _x, tokens, accumulate: true);
        }
    }

    public void Dispose()
    {
        _readback.Dispose();
        _buffers.ForEach(b => b.Dispose());
    }
}
