using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Models.Generation;
using PeftHost.Models.Layers;
using PeftHost.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Engine.Inference.Batching;

/// <summary>
/// Continuous batching on TorchSharp: one KV cache of <see cref="MaxRows"/> rows, a row and a position per
/// sequence (the models' per-row forward, <see cref="ICausalLM.ForwardRows"/>), and a different adapter per row
/// (PEFT's mixed batch, <see cref="PeftModel.Run{T}"/> with adapter names). The running sequences fill rows
/// 0 .. n - 1: a finished one's row takes the last row's content, so a step runs exactly the live rows.
/// Prompts that arrive together run as one padded batch (<see cref="StartMany"/>); a prompt-learning adapter's
/// runs alone into its row (<see cref="PeftModel.CausalLMPrefill"/> puts its virtual tokens first), then decodes with the others. Every method runs on the caller's thread
/// (one thread drives it); plugin reloads from other threads wait for the step in flight (the PEFT model's lock).
/// </summary>
public sealed class TorchBatchDecoder : IBatchDecoder
{
    private const long InitialCapacity = 256;
    private readonly nn.Module _model;
    private readonly ICausalLM _lm;
    private readonly PeftModel _peft;
    private readonly Device _device;
    private readonly KvCache _cache;
    private readonly List<DecodeSequence> _running = [];

    private TorchBatchDecoder(nn.Module model, ICausalLM lm, PeftModel peft, ITextTokenizer? tokenizer, Device device, int maxRows, ModelConfig config)
    {
        _model = model;
        _lm = lm;
        _peft = peft;
        _device = device;
        Tokenizer = tokenizer;
        MaxRows = maxRows;
        VocabSize = config.VocabSize;
        ContextSize = config.MaxPositions;
        _cache = lm.CreateCache(maxRows, Math.Min(InitialCapacity, config.MaxPositions));
        Description = $"torch {device.type.ToString().ToLowerInvariant()}, {model.parameters().First().dtype.ToString().ToLowerInvariant()}, {maxRows} rows, continuous batching";
    }

    /// <summary>
    /// Loads <see cref="InferenceBackendOptions.ModelFolder"/> and its adapters through <paramref name="catalog"/>'s plugins
    /// (the caller's catalog: its reloads reach this model), decoding up to <paramref name="maxRows"/> sequences together.
    /// </summary>
    /// <exception cref="NotSupportedException">The model is not a causal LM, or an adapter has a scale other than 1.</exception>
    public static TorchBatchDecoder Open(InferenceBackendOptions options, int maxRows, PluginCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRows, 1);
        if (options.Adapters.FirstOrDefault(a => a.Scale != 1.0) is AdapterSpec scaled)
            throw new NotSupportedException($"adapter '{scaled.Name}': the torch backend applies adapters at their trained scale (1); scale {scaled.Scale} needs --backend llama.");
        ITextTokenizer? tokenizer = InferenceBackends.TryTokenizer(options.ModelFolder);
        Device device = options.Device ?? CPU;
        (ModelConfig config, nn.Module model) = ModelFactory.Load(options.ModelFolder, options.DType, device);
        if (model is not ICausalLM lm)
        {
            string name = model.GetType().Name;
            model.Dispose();
            throw new NotSupportedException($"{name} is not a causal language model: serving runs causal LMs.");
        }
        PeftModel? peft = null;
        try
        {
            peft = new PeftModel(model, catalog);
            foreach (AdapterSpec a in options.Adapters) peft.LoadAdapter(a.Folder, a.Name);
            model.eval();
            return new TorchBatchDecoder(model, lm, peft, tokenizer, device, maxRows, config);
        }
        catch
        {
            peft?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public InferenceBackendKind Kind => InferenceBackendKind.Torch;

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public ITextTokenizer? Tokenizer { get; }

    /// <inheritdoc/>
    public int VocabSize { get; }

    /// <inheritdoc/>
    public int ContextSize { get; }

    /// <inheritdoc/>
    public int MaxRows { get; }

    /// <inheritdoc/>
    public bool MixesAdapters => true;

    /// <inheritdoc/>
    public IReadOnlyList<string> Adapters => _peft.Adapters;

    /// <inheritdoc/>
    public IReadOnlyList<DecodeSequence> Running => _running;

    /// <summary>The PEFT model (its adapters; what a plugin reload hands over).</summary>
    public PeftModel Peft => _peft;

    /// <summary>KV cache positions per row allocated now (grown on demand up to <see cref="ContextSize"/>).</summary>
    public long CacheCapacity => _cache.Capacity;

    /// <inheritdoc/>
    public int ExtraPositions(string? adapter) => _peft.VirtualTokens(adapter);

    /// <inheritdoc/>
    public DecodeSequence Start(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options)
    {
        if (_running.Count >= MaxRows) throw new InvalidOperationException($"All {MaxRows} rows are in use.");
        DecodeSequence sequence = Prepare(prompt, adapter, options, out long needed);
        PrefillAlone(sequence, needed);
        return sequence;
    }

    /// <summary>
    /// Starts the requests in free rows; the prompts of those without virtual tokens run as one batch, right-padded
    /// to the longest, each row with its own adapter (a batched prefill: one pass over the weights for all of them).
    /// Prompt-learning requests put their virtual tokens first and run alone (as <see cref="Start"/> runs them).
    /// </summary>
    public IReadOnlyList<StartOutcome> StartMany(IReadOnlyList<SequenceStart> starts)
    {
        ArgumentNullException.ThrowIfNull(starts);
        var outcomes = new StartOutcome[starts.Count];
        var batch = new List<(int Index, DecodeSequence Sequence)>();
        var alone = new List<(int Index, DecodeSequence Sequence, long Needed)>();
        for (int i = 0; i < starts.Count; i++)
        {
            SequenceStart s = starts[i];
            try
            {
                if (_running.Count + batch.Count + alone.Count >= MaxRows) throw new InvalidOperationException($"All {MaxRows} rows are in use.");
                DecodeSequence sequence = Prepare(s.Prompt, s.Adapter, s.Options, out long needed);
                // Virtual tokens (prompt learning) go first in the cache: such a prompt runs alone.
                if (needed > sequence.PromptLength) alone.Add((i, sequence, needed));
                else batch.Add((i, sequence));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or KeyNotFoundException)
            {
                outcomes[i] = new StartOutcome(null, e);
            }
        }
        // One prompt takes the single-row path (no padding, no gather).
        if (batch.Count == 1) alone.Insert(0, (batch[0].Index, batch[0].Sequence, batch[0].Sequence.PromptLength));
        else if (batch.Count > 1) PrefillTogether(batch, outcomes);
        foreach ((int index, DecodeSequence sequence, long needed) in alone)
        {
            try
            {
                PrefillAlone(sequence, needed);
                outcomes[index] = new StartOutcome(sequence, null);
            }
            catch (Exception e)
            {
                outcomes[index] = new StartOutcome(null, e);
            }
        }
        return outcomes;
    }

    // Runs one prepared sequence's prompt (and an adapter's virtual tokens) into the next free row.
    private void PrefillAlone(DecodeSequence sequence, long needed)
    {
        sequence.Row = _running.Count;
        try
        {
            Reserve(needed);
            using (torch.inference_mode())
            using (NewDisposeScope())
            using (KvCache row = _cache.Rows(sequence.Row, 1))
            {
                Tensor ids = torch.tensor(sequence.Ids.ToArray(), dtype: ScalarType.Int64, device: _device).unsqueeze(0);
                Tensor logits = _peft.CausalLMPrefill(ids, row, sequence.Adapter, out long positions);
                sequence.Position = positions;
                sequence.Add(Choose(logits.reshape(-1), sequence, greedy: null));
            }
        }
        catch
        {
            sequence.ReleaseState();
            throw;
        }
        _running.Add(sequence);
    }

    private void PrefillTogether(List<(int Index, DecodeSequence Sequence)> batch, StartOutcome[] outcomes)
    {
        int n = batch.Count, first = _running.Count;
        int longest = batch.Max(b => b.Sequence.PromptLength);
        try
        {
            Reserve(longest);
            // Row j holds its prompt, then copies of its last token up to the longest (any valid id: no real token
            // attends to the padding, and the row's next token overwrites its keys).
            long[] ids = new long[(long)n * longest];
            for (int j = 0; j < n; j++)
            {
                IReadOnlyList<long> p = batch[j].Sequence.Ids;
                for (int t = 0; t < longest; t++) ids[(long)j * longest + t] = p[Math.Min(t, p.Count - 1)];
            }
            long[] lengths = [.. batch.Select(b => (long)b.Sequence.PromptLength)];
            string[] routes = [.. batch.Select(b => b.Sequence.Route)];
            using (torch.inference_mode())
            using (NewDisposeScope())
            using (KvCache rows = _cache.Rows(first, n))
            {
                Tensor input = torch.tensor(ids, dtype: ScalarType.Int64, device: _device).view(n, longest);
                Tensor logits = _peft.Run(() => _lm.ForwardRows(input, rows, new long[n], lastTokenOnly: true, rowLengths: lengths), routes).view(n, -1);
                long[] greedy = logits.argmax(-1).cpu().data<long>().ToArray();
                for (int j = 0; j < n; j++)
                {
                    DecodeSequence s = batch[j].Sequence;
                    s.Row = first + j;
                    s.Position = s.PromptLength;
                    s.Add(Choose(logits[j], s, greedy[j]));
                }
            }
        }
        catch (Exception e)
        {
            foreach ((int index, DecodeSequence s) in batch)
            {
                s.ReleaseState();
                outcomes[index] = new StartOutcome(null, e);
            }
            return;
        }
        foreach ((int index, DecodeSequence s) in batch)
        {
            _running.Add(s);
            outcomes[index] = new StartOutcome(s, null);
        }
    }

    // Checks a request before anything runs and makes its sequence (its sampler seeded); `needed` = its positions, virtual tokens included.
    private DecodeSequence Prepare(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options, out long needed)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (prompt.Count == 0) throw new ArgumentException("The prompt is empty.", nameof(prompt));
        if (prompt.FirstOrDefault(i => i < 0 || i >= VocabSize, -1) is int bad and >= 0)
            throw new ArgumentException($"Token id {bad} is outside the model's vocabulary of {VocabSize}.", nameof(prompt));
        bool promptLearning = adapter is not null && _peft.IsPromptLearning(adapter);
        needed = prompt.Count + ExtraPositions(adapter);
        if (needed >= ContextSize + 1)
            throw new ArgumentException($"{prompt.Count} prompt tokens{(needed > prompt.Count ? $" and {needed - prompt.Count} virtual tokens" : "")} exceed the model's context of {ContextSize} positions.", nameof(prompt));
        var sequence = new DecodeSequence(prompt, adapter, options) { Route = promptLearning ? AdapterRouting.BaseModel : adapter ?? AdapterRouting.BaseModel };
        sequence.State = options.DoSample ? new torch.Generator(options.Seed is long s ? (ulong)s : (ulong)Random.Shared.NextInt64(), _device) : null;
        return sequence;
    }

    /// <inheritdoc/>
    public void Step()
    {
        int n = _running.Count;
        if (n == 0) return;
        Reserve(_running.Max(s => s.Position) + 1);
        long[] starts = [.. _running.Select(s => s.Position)];
        string[] routes = [.. _running.Select(s => s.Route)];
        using (torch.inference_mode())
        using (NewDisposeScope())
        using (KvCache rows = _cache.Rows(0, n))
        {
            Tensor ids = torch.tensor(_running.Select(s => (long)s.LastToken).ToArray(), dtype: ScalarType.Int64, device: _device).view(n, 1);
            Tensor logits = _peft.Run(() => _lm.ForwardRows(ids, rows, starts, lastTokenOnly: true), routes).view(n, -1);
            // Greedy rows (most of them) take one argmax for the whole batch and one copy to the host.
            long[] greedy = logits.argmax(-1).cpu().data<long>().ToArray();
            for (int i = 0; i < n; i++)
            {
                DecodeSequence s = _running[i];
                s.Add(Choose(logits[i], s, greedy[i]));
                s.Position++;
            }
        }
    }

    /// <inheritdoc/>
    public void Finish(DecodeSequence sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        int row = _running.IndexOf(sequence);
        if (row < 0) return;
        int last = _running.Count - 1;
        if (row != last)
        {
            DecodeSequence moved = _running[last];
            _cache.MoveRow(last, row, moved.Position);
            moved.Row = row;
            _running[row] = moved;
        }
        _running.RemoveAt(last);
        sequence.ReleaseState();
    }

    /// <inheritdoc/>
    public void LoadAdapter(string name, string folder) => _peft.LoadAdapter(folder, name);

    /// <inheritdoc/>
    public void ReplaceAdapter(string name, string folder)
    {
        EnsureIdle(name);
        _peft.PeftTypeOf(name);
        try
        {
            // In place where the method can (LoRA of a rank that fits the loaded buffers): no new layers, no new buffers.
            _peft.LoadAdapter(folder, name, hotswap: true);
            return;
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException)
        {
            // Another method, another rank or other targets: no sequence uses the adapter, so it is replaced whole
            // (an unreadable folder fails again below, before anything is removed).
        }
        using AdapterState incoming = AdapterFolder.Read(folder, name);
        incoming.Config["inference_mode"] = true;
        using AdapterState previous = _peft.ExportAdapter(name);
        _peft.DeleteAdapter(name);
        try
        {
            _peft.ImportAdapter(incoming);
        }
        catch
        {
            _peft.ImportAdapter(previous);
            throw;
        }
        _model.eval();
    }

    /// <inheritdoc/>
    public void UnloadAdapter(string name)
    {
        EnsureIdle(name);
        _peft.DeleteAdapter(name);
    }

    /// <summary>Frees every row, the adapters, the plugins' hold on the model, and the model.</summary>
    public void Dispose()
    {
        foreach (DecodeSequence s in _running) s.ReleaseState();
        _running.Clear();
        _cache.Dispose();
        _peft.Dispose();
        _model.Dispose();
    }

    private void EnsureIdle(string name)
    {
        if (_running.Any(s => s.Adapter == name))
            throw new InvalidOperationException($"adapter '{name}' is serving {_running.Count(s => s.Adapter == name)} running sequences: wait for them to finish.");
    }

    // Grows the cache (doubling, up to the context) so that every row can hold `positions` positions.
    private void Reserve(long positions)
    {
        if (positions <= _cache.Capacity) return;
        long capacity = _cache.Capacity;
        while (capacity < positions) capacity *= 2;
        _cache.Resize(Math.Min(capacity, ContextSize));
    }

    private static long Choose(Tensor logits, DecodeSequence sequence, long? greedy)
    {
        GenerationOptions o = sequence.Options;
        if (!o.DoSample && o.RepetitionPenalty == 1.0 && greedy is long g) return g;
        using Tensor row = logits.to(ScalarType.Float32);
        return TokenGenerator.Choose(row, sequence.Ids, o, sequence.State as torch.Generator);
    }
}
