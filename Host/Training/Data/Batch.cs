using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Data;

/// <summary>
/// One padded micro-batch (right padding: attention mask 0, labels -100). Causal LM: <see cref="Labels"/>
/// [batch, seq]; classification: [batch] class indices or float targets. Packed batches also carry
/// sequence and position ids. The tensors are disposed with the batch.
/// </summary>
public sealed class Batch : IDisposable
{
    /// <summary>Token ids [batch, seq] (int64).</summary>
    public required Tensor InputIds { get; init; }

    /// <summary>[batch, seq] 1 = token, 0 = padding; null when every row is full length (no padding).</summary>
    public Tensor? AttentionMask { get; init; }

    /// <summary>Labels (see the class remarks).</summary>
    public required Tensor Labels { get; init; }

    /// <summary>Packed batches: document ids [batch, seq] (0 = padding).</summary>
    public Tensor? SequenceIds { get; init; }

    /// <summary>Packed batches: positions [batch, seq] within each document.</summary>
    public Tensor? PositionIds { get; init; }

    /// <summary>Real (non-padding) tokens in the batch.</summary>
    public long Tokens { get; init; }

    /// <summary>Rows.</summary>
    public long Size => InputIds.shape[0];

    /// <summary>Moves the tensors to a device (a new batch; this one stays as it is).</summary>
    public Batch To(Device device)
    {
        if (device.type == DeviceType.CPU) return this;
        return new Batch
        {
            InputIds = InputIds.to(device), AttentionMask = AttentionMask?.to(device), Labels = Labels.to(device),
            SequenceIds = SequenceIds?.to(device), PositionIds = PositionIds?.to(device), Tokens = Tokens,
        };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask?.Dispose();
        Labels.Dispose();
        SequenceIds?.Dispose();
        PositionIds?.Dispose();
    }
}
