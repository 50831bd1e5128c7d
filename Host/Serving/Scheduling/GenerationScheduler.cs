using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PeftHost.Engine.Inference.Batching;
using PeftHost.Models.Generation;
using PeftHost.Serving.Metrics;

namespace PeftHost.Serving.Scheduling;

/// <summary>
/// Runs an <see cref="IBatchDecoder"/> on one thread of its own: requests wait in a bounded queue, join the batch
/// when a row is free (continuous batching: between two decoding steps; those admitted together start together, so
/// the decoder can prefill their prompts as one batch) and leave it when done, cancelled or
/// timed out, which frees their row at once. Adapter changes run on the same thread between steps: loading a
/// new adapter at once; a hotswap or an unload of adapter X once no running request uses X, while new requests
/// for X wait in the queue and every other adapter goes on. So a request runs start to end with the adapter
/// version it was admitted with. A decoder that cannot mix adapters in one batch (llama.cpp) is fed requests of
/// the adapter in use first.
/// </summary>
public sealed class GenerationScheduler : IDisposable
{
    // Requests of one adapter taken in a row ahead of older ones of other adapters, at most (decoders that cannot mix adapters).
    private const int MaxAdapterStreak = 16;
    private readonly IBatchDecoder _decoder;
    private readonly int _maxQueue;
    private readonly ServingMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly LinkedList<GenerationRequest> _queue = new();
    private readonly List<AdapterCommand> _commands = [];
    private readonly List<(GenerationRequest Request, DecodeSequence Sequence)> _rows = [];
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private volatile string[] _adapters;
    private volatile bool _stopping;
    private string? _lastAdapter;
    private int _streak;

    /// <summary>Starts the scheduling thread over <paramref name="decoder"/> (which it then owns).</summary>
    public GenerationScheduler(IBatchDecoder decoder, int maxQueue, ServingMetrics? metrics = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxQueue, 1);
        _decoder = decoder;
        _maxQueue = maxQueue;
        _metrics = metrics;
        _logger = logger ?? NullLogger.Instance;
        _adapters = [.. decoder.Adapters];
        _thread = new Thread(Loop) { IsBackground = true, Name = "pefthost-scheduler" };
        _thread.Start();
    }

    /// <summary>The decoder (its description, context, tokenizer).</summary>
    public IBatchDecoder Decoder => _decoder;

    /// <summary>The adapters loaded now.</summary>
    public IReadOnlyList<string> Adapters => _adapters;

    /// <summary>Requests waiting for a row.</summary>
    public int Waiting { get { lock (_gate) return _queue.Count; } }

    /// <summary>Requests being generated.</summary>
    public int Running { get { lock (_gate) return _rows.Count; } }

    /// <summary>The queue's bound.</summary>
    public int MaxQueue => _maxQueue;

    /// <summary>
    /// Queues a request; its tokens come on <see cref="GenerationRequest.Tokens"/>. <paramref name="options"/>'
    /// MaxNewTokens bounds it (the context bounds it too) and its StopTokenIds end it.
    /// </summary>
    /// <exception cref="QueueFullException">The queue is full.</exception>
    /// <exception cref="ObjectDisposedException">The scheduler is stopping.</exception>
    public GenerationRequest Submit(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        var request = new GenerationRequest(prompt, adapter, options, cancellationToken);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (_queue.Count >= _maxQueue)
            {
                request.Dispose();
                throw new QueueFullException(_maxQueue);
            }
            _queue.AddLast(request);
            _metrics?.Waiting(_queue.Count);
        }
        _wake.Release();
        return request;
    }

    /// <summary>Loads an adapter folder under a new name, between two steps (no request waits for it).</summary>
    public Task LoadAdapterAsync(string name, string folder) => Command(AdapterOperation.Load, name, folder);

    /// <summary>Replaces adapter <paramref name="name"/>'s weights (a hotswap) once no running request uses it; its new requests wait meanwhile.</summary>
    public Task ReplaceAdapterAsync(string name, string folder) => Command(AdapterOperation.Replace, name, folder);

    /// <summary>Removes adapter <paramref name="name"/> once no running request uses it; its new requests wait, then fail (the adapter is gone).</summary>
    public Task UnloadAdapterAsync(string name) => Command(AdapterOperation.Unload, name, null);

    /// <summary>Stops the thread: queued and running requests end cancelled; then the decoder is disposed.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping) return;
            _stopping = true;
        }
        _wake.Release();
        _thread.Join();
        _decoder.Dispose();
        _wake.Dispose();
    }

    private Task Command(AdapterOperation operation, string name, string? folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var command = new AdapterCommand(operation, name, folder, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _commands.Add(command);
        }
        _wake.Release();
        return command.Done.Task;
    }

    private void Loop()
    {
        while (true)
        {
            bool idle;
            lock (_gate)
            {
                if (_stopping) break;
                DropCancelledWaiting();
            }
            FinishCancelledRows();
            RunCommands();
            Admit();
            lock (_gate) idle = _rows.Count == 0;
            if (idle)
            {
                // Nothing to decode: sleep until a request, a command or a cancellation (polled) comes.
                _wake.Wait(50);
                continue;
            }
            DecodeStep();
        }
        Shutdown();
    }

    private void DropCancelledWaiting()
    {
        for (LinkedListNode<GenerationRequest>? node = _queue.First; node is not null;)
        {
            LinkedListNode<GenerationRequest>? next = node.Next;
            if (node.Value.IsCancelled)
            {
                node.Value.Complete(GenerationFinish.Cancelled);
                _queue.Remove(node);
            }
            node = next;
        }
        _metrics?.Waiting(_queue.Count);
    }

    private void FinishCancelledRows()
    {
        List<(GenerationRequest, DecodeSequence)> cancelled;
        lock (_gate) cancelled = [.. _rows.Where(r => r.Request.IsCancelled)];
        foreach ((GenerationRequest request, DecodeSequence sequence) in cancelled) End(request, sequence, GenerationFinish.Cancelled);
    }

    // Commands run in order of arrival, each once no running request uses its adapter (a load needs no wait).
    private void RunCommands()
    {
        List<AdapterCommand> ready;
        lock (_gate)
        {
            ready = [];
            var blocked = new HashSet<string>(StringComparer.Ordinal);
            foreach (AdapterCommand c in _commands)
            {
                bool busy = c.Operation != AdapterOperation.Load && _rows.Any(r => r.Request.Adapter == c.Name);
                if (busy || blocked.Contains(c.Name)) blocked.Add(c.Name);
                else ready.Add(c);
            }
            foreach (AdapterCommand c in ready) _commands.Remove(c);
        }
        foreach (AdapterCommand c in ready)
        {
            try
            {
                switch (c.Operation)
                {
                    case AdapterOperation.Load: _decoder.LoadAdapter(c.Name, c.Folder!); break;
                    case AdapterOperation.Replace: _decoder.ReplaceAdapter(c.Name, c.Folder!); break;
                    default: _decoder.UnloadAdapter(c.Name); break;
                }
                _adapters = [.. _decoder.Adapters];
                _metrics?.AdapterOperation(c.Operation.ToString().ToLowerInvariant(), succeeded: true);
                _logger.LogInformation("Adapter {Operation} of {Name} done", c.Operation, c.Name);
                c.Done.SetResult();
            }
            catch (Exception e)
            {
                _metrics?.AdapterOperation(c.Operation.ToString().ToLowerInvariant(), succeeded: false);
                _logger.LogWarning("Adapter {Operation} of {Name} failed: {Message}", c.Operation, c.Name, e.Message);
                c.Done.SetException(e);
            }
        }
    }

    // Takes every admissible waiting request that has a free row and starts them together (the decoder prefills
    // their prompts as one batch where it can), then streams each one's first token.
    private void Admit()
    {
        while (true)
        {
            var taken = new List<GenerationRequest>();
            lock (_gate)
            {
                while (_rows.Count + taken.Count < _decoder.MaxRows && Next(taken) is { } request)
                {
                    _queue.Remove(request);
                    taken.Add(request);
                }
                if (taken.Count == 0) return;
                _metrics?.Waiting(_queue.Count);
            }
            foreach (GenerationRequest r in taken) r.Admitted();
            IReadOnlyList<StartOutcome> outcomes = _decoder.StartMany([.. taken.Select(r => new SequenceStart(r.Prompt, r.Adapter, r.Options))]);
            for (int i = 0; i < taken.Count; i++)
            {
                GenerationRequest request = taken[i];
                if (outcomes[i].Sequence is not { } sequence)
                {
                    request.Fail(outcomes[i].Error ?? new InvalidOperationException("The decoder did not start the request."));
                    continue;
                }
                if (request.Adapter == _lastAdapter) _streak++;
                else (_lastAdapter, _streak) = (request.Adapter, 1);
                lock (_gate) _rows.Add((request, sequence));
                _metrics?.Started(request.QueueSeconds ?? 0);
                Emit(request, sequence);
            }
        }
    }

    // The oldest admissible request: its adapter is not waiting for a hotswap or unload, and it may join the running
    // rows and those already taken for this admission (a decoder that cannot mix adapters runs one adapter at a time).
    private GenerationRequest? Next(List<GenerationRequest> taken)
    {
        var draining = new HashSet<string>(_commands.Where(c => c.Operation != AdapterOperation.Load).Select(c => c.Name), StringComparer.Ordinal);
        bool mixes = _decoder.MixesAdapters;
        bool busy = _rows.Count > 0 || taken.Count > 0;
        string? running = _rows.Count > 0 ? _rows[0].Request.Adapter : taken.Count > 0 ? taken[0].Adapter : null;
        string? last = taken.Count > 0 ? taken[^1].Adapter : _lastAdapter;
        GenerationRequest? oldest = null, sameAdapter = null;
        foreach (GenerationRequest r in _queue)
        {
            if (r.IsCancelled || (r.Adapter is { } a && draining.Contains(a))) continue;
            if (!mixes && busy && r.Adapter != running) continue;
            oldest ??= r;
            if (r.Adapter == last)
            {
                sameAdapter = r;
                break;
            }
        }
        // A decoder that cannot mix adapters switches them as rarely as it fairly can.
        if (!mixes && sameAdapter is not null && _streak + taken.Count < MaxAdapterStreak) return sameAdapter;
        return oldest;
    }

    private void DecodeStep()
    {
        List<(GenerationRequest Request, DecodeSequence Sequence)> rows;
        lock (_gate) rows = [.. _rows];
        try
        {
            _decoder.Step();
        }
        catch (Exception e)
        {
            _logger.LogError(e, "A decoding step failed; its {Count} requests end with the error", rows.Count);
            foreach ((GenerationRequest request, DecodeSequence sequence) in rows) End(request, sequence, GenerationFinish.Cancelled, e);
            return;
        }
        _metrics?.Step(rows.Count);
        foreach ((GenerationRequest request, DecodeSequence sequence) in rows) Emit(request, sequence);
    }

    // Streams the sequence's newest token and ends the request at a stop id, its maximum, or the context's end.
    private void Emit(GenerationRequest request, DecodeSequence sequence)
    {
        int token = sequence.LastToken;
        request.Emit(token);
        _metrics?.Token(request.Generated == 1 ? request.TimeToFirstToken : null);
        if (request.Options.StopTokenIds.Contains(token)) End(request, sequence, GenerationFinish.EndOfSequence);
        else if (sequence.Generated >= request.Options.MaxNewTokens || sequence.Position + 1 > _decoder.ContextSize) End(request, sequence, GenerationFinish.Length);
    }

    private void End(GenerationRequest request, DecodeSequence sequence, GenerationFinish finish, Exception? error = null)
    {
        _decoder.Finish(sequence);
        lock (_gate) _rows.RemoveAll(r => ReferenceEquals(r.Request, request));
        _metrics?.Finished(request.Prompt.Count, request.Generated, request.Elapsed);
        if (error is null) request.Complete(finish);
        else request.Fail(error);
    }

    private void Shutdown()
    {
        List<(GenerationRequest Request, DecodeSequence Sequence)> rows;
        List<GenerationRequest> waiting;
        List<AdapterCommand> commands;
        lock (_gate)
        {
            rows = [.. _rows];
            waiting = [.. _queue];
            _queue.Clear();
            commands = [.. _commands];
            _commands.Clear();
        }
        foreach ((GenerationRequest request, DecodeSequence sequence) in rows) End(request, sequence, GenerationFinish.Cancelled);
        foreach (GenerationRequest r in waiting) r.Complete(GenerationFinish.Cancelled);
        foreach (AdapterCommand c in commands) c.Done.TrySetException(new ObjectDisposedException(nameof(GenerationScheduler), "The server stopped before the adapter change ran."));
    }

    private enum AdapterOperation
    {
        Load,
        Replace,
        Unload,
    }

    private sealed record AdapterCommand(AdapterOperation Operation, string Name, string? Folder, TaskCompletionSource Done);
}
