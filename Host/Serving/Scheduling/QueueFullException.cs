namespace PeftHost.Serving.Scheduling;

/// <summary>The scheduler's queue holds as many requests as it may (HTTP 429, with Retry-After).</summary>
/// <param name="capacity">The queue's bound.</param>
public sealed class QueueFullException(int capacity)
    : InvalidOperationException($"The server is busy: {capacity} requests are already waiting (--max-queue {capacity}). Retry later.")
{
    /// <summary>The queue's bound.</summary>
    public int Capacity { get; } = capacity;
}
