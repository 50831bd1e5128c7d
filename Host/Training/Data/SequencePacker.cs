namespace PeftHost.Training.Data;

/// <summary>
/// TRL's packing: several examples share one row of at most max_length tokens, in order (a row takes
/// examples until the next would not fit). Each keeps its own positions (from 0) and sequence id, and
/// the model's attention never crosses from one to another.
/// </summary>
public static class SequencePacker
{
    /// <summary>Packs causal-LM examples (each already truncated to <paramref name="maxLength"/>).</summary>
    public static IReadOnlyList<TrainingExample> Pack(IReadOnlyList<TrainingExample> examples, int maxLength)
    {
        var rows = new List<TrainingExample>();
        var current = new List<TrainingExample>();
        int length = 0;
        foreach (TrainingExample e in examples)
        {
            int n = Tokens(e);
            if (length + n > maxLength && current.Count > 0)
            {
                rows.Add(Join(current));
                current.Clear();
                length = 0;
            }
            current.Add(e);
            length += n;
        }
        if (current.Count > 0) rows.Add(Join(current));
        return rows;
    }

    // A pre-tokenised row's padding (mask 0) is not packed.
    private static int Tokens(TrainingExample e) => e.AttentionMask?.Count(m => m == 1) ?? e.InputIds.Length;

    private static TrainingExample Join(List<TrainingExample> parts)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        var sequences = new List<int>();
        var positions = new List<int>();
        for (int s = 0; s < parts.Count; s++)
        {
            TrainingExample e = parts[s];
            int position = 0;
            for (int i = 0; i < e.InputIds.Length; i++)
            {
                if (e.AttentionMask is { } m && m[i] == 0) continue;
                ids.Add(e.InputIds[i]);
                labels.Add(e.Labels![i]);
                sequences.Add(s + 1);
                positions.Add(position++);
            }
            // The first token of a document is never predicted from the previous document.
            if (s > 0 && position > 0) labels[labels.Count - position] = TrainingExample.IgnoreIndex;
        }
        return new TrainingExample
        {
            InputIds = [.. ids], Labels = [.. labels], SequenceIds = [.. sequences], PositionIds = [.. positions],
            Source = parts.Count == 1 ? parts[0].Source : $"{parts[0].Source} (+{parts.Count - 1} packed)",
        };
    }
}
