using static TorchSharp.torch;

namespace PeftHost.Training.Data;

/// <summary>Pads examples to the longest in the batch, on the right (transformers' DataCollatorWithPadding / TRL's collator).</summary>
public static class DataCollator
{
    /// <summary>The batch of <paramref name="examples"/>; <paramref name="padTokenId"/> fills the padding (masked, never counted).</summary>
    public static Batch Collate(IReadOnlyList<TrainingExample> examples, TaskKind task, int padTokenId)
    {
        int rows = examples.Count;
        int length = examples.Max(e => e.InputIds.Length);
        var ids = new long[rows * length];
        var mask = new long[rows * length];
        bool packed = examples.Any(e => e.SequenceIds is not null);
        var sequences = packed ? new long[rows * length] : null;
        var positions = packed ? new long[rows * length] : null;
        var labels = task == TaskKind.CausalLM ? new long[rows * length] : null;
        bool padded = false;
        long tokens = 0;
        for (int r = 0; r < rows; r++)
        {
            TrainingExample e = examples[r];
            for (int i = 0; i < length; i++)
            {
                int at = r * length + i;
                bool real = i < e.InputIds.Length && (e.AttentionMask is null || e.AttentionMask[i] == 1);
                ids[at] = i < e.InputIds.Length ? e.InputIds[i] : padTokenId;
                mask[at] = real ? 1 : 0;
                padded |= !real;
                tokens += real ? 1 : 0;
                if (labels is not null) labels[at] = real && e.Labels is { } l ? l[i] : TrainingExample.IgnoreIndex;
                if (packed)
                {
                    sequences![at] = i < e.InputIds.Length ? e.SequenceIds![i] : 0;
                    positions![at] = i < e.InputIds.Length ? e.PositionIds![i] : 0;
                }
            }
        }
        Tensor labelTensor = task == TaskKind.CausalLM
            ? tensor(labels!, [rows, length])
            : examples[0].Target is not null
                ? tensor(examples.Select(e => e.Target ?? throw new InvalidDataException($"{e.Source}: a regression row has no target.")).ToArray())
                : tensor(examples.Select(e => e.ClassLabel ?? throw new InvalidDataException($"{e.Source}: a classification row has no label.")).ToArray());
        return new Batch
        {
            InputIds = tensor(ids, [rows, length]),
            // Packed rows carry their own block mask; unpadded rows need none (the fused causal path).
            AttentionMask = padded && !packed ? tensor(mask, [rows, length]) : null,
            Labels = labelTensor,
            SequenceIds = packed ? tensor(sequences!, [rows, length]) : null,
            PositionIds = packed ? tensor(positions!, [rows, length]) : null,
            Tokens = tokens,
        };
    }
}
