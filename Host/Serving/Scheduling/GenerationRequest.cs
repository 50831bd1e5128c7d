using System.Diagnostics;
using System.Threading.Channels;
using PeftHost.Models.Generation;

namespace PeftHost.Serving.Scheduling;

/// <summary>
/// One request to the scheduler: prompt ids, the adapter (null: the base), the decoding settings. Its tokens
/// arrive on <see cref="Tokens"/> as the scheduler generates them; the channel completes when generation ends
/// (<see cref="Finish"/> says why), or fails with the error that ended it. <see cref="Cancel"/> (or the token
/// given at submission) frees its row at the next step.
/// </summary>
public sealed class GenerationRequest : IDisposable
{
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly CancellationTokenSource _cancel;
    private readonly long _submitted = Stopwatch.GetTimestamp();

    internal GenerationRequest(IReadOnlyList<int> prompt, string? adapter, GenerationOptions options, CancellationToken cancellationToken)
    {
        Prompt = prompt;
        Adapter = adapter;
        Options = options;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    /// <summary>The prompt's ids.</summary>
    public IReadOnlyList<int> Prompt { get; }

    /// <summary>The adapter (null: the base model).</summary>
    public string? Adapter { get; }

    /// <summary>Decoding settings: <see cref="GenerationOptions.MaxNewTokens"/> and the stop ids end it.</summary>
    public GenerationOptions Options { get; }

    /// <summary>The generated ids as they come.</summary>
    public ChannelReader<int> Tokens => _tokens.Reader;

    /// <summary>Why generation ended (<see cref="GenerationFinish.None"/> until it has).</summary>
    public GenerationFinish Finish { get; private set; }

    /// <summary>Tokens generated.</summary>
    public int Generated { get; private set; }

    /// <summary>Seconds from submission to the first token (null before it).</summary>
    public double? TimeToFirstToken { get; private set; }

    /// <summary>Seconds spent waiting for a row.</summary>
    public double? QueueSeconds { get; private set; }

    /// <summary>Whether the request was cancelled (by its token or <see cref="Cancel"/>).</summary>
    public bool IsCancelled => _cancel.IsCancellationRequested;

    internal CancellationToken CancellationToken => _cancel.Token;

    internal double Elapsed => Stopwatch.GetElapsedTime(_submitted).TotalSeconds;

    /// <summary>Stops generation for this request; its row is freed at the next step.</summary>
    public void Cancel()
    {
        try { _cancel.Cancel(); }
        catch (ObjectDisposedException) { /* already finished and disposed: nothing runs any more */ }
    }

    internal void Admitted() => QueueSeconds = Elapsed;

    internal void Emit(int token)
    {
        TimeToFirstToken ??= Elapsed;
        Generated++;
        _tokens.Writer.TryWrite(token);
    }

    internal void Complete(GenerationFinish finish)
    {
        if (Finish != GenerationFinish.None) return;
        Finish = finish;
        _tokens.Writer.TryComplete();
    }

    internal void Fail(Exception error)
    {
        if (Finish != GenerationFinish.None) return;
        Finish = GenerationFinish.Cancelled;
        _tokens.Writer.TryComplete(error);
    }

    /// <summary>Cancels the request if it still runs and frees its cancellation source.</summary>
    public void Dispose()
    {
        Cancel();
        _cancel.Dispose();
    }
}
