namespace PeftHost.Training.Data;

/// <summary>The encoded examples of a dataset file (packed when asked), ready to batch.</summary>
public sealed class TrainingDataset
{
    private TrainingDataset(string source, IReadOnlyList<TrainingExample> examples, int rows)
    {
        Source = source;
        Examples = examples;
        Rows = rows;
    }

    /// <summary>The file (or "file (eval split)").</summary>
    public string Source { get; }

    /// <summary>The examples (packed rows when packing).</summary>
    public IReadOnlyList<TrainingExample> Examples { get; }

    /// <summary>The file's rows that went into it.</summary>
    public int Rows { get; }

    /// <summary>Real tokens over every example.</summary>
    public long Tokens => Examples.Sum(e => (long)(e.AttentionMask?.Count(m => m == 1) ?? e.InputIds.Length));

    /// <summary>Reads and encodes every row of <paramref name="path"/>: all rows are checked before anything is returned.</summary>
    /// <exception cref="DataFormatException">A row is malformed (the message names the file, the line and the field).</exception>
    public static TrainingDataset Load(string path, ExampleEncoder encoder, bool packing) =>
        FromRows(path, DatasetFile.Read(path), encoder, packing);

    /// <summary>Encodes rows already read.</summary>
    public static TrainingDataset FromRows(string source, IReadOnlyList<DatasetRow> rows, ExampleEncoder encoder, bool packing)
    {
        if (rows.Count == 0) throw new InvalidDataException($"{source}: the dataset has no rows.");
        var examples = rows.Select(encoder.Encode).ToList();
        if (packing && encoder.Task != TaskKind.CausalLM)
            throw new InvalidDataException("packing applies to causal language modelling only.");
        return new TrainingDataset(source, packing ? SequencePacker.Pack(examples, encoder.MaxLength) : examples, rows.Count);
    }

    /// <summary>
    /// Splits off <paramref name="fraction"/> of the rows for evaluation (eval_split), chosen by a
    /// permutation seeded with <paramref name="seed"/>; both parts keep the file order.
    /// </summary>
    public static (IReadOnlyList<DatasetRow> Train, IReadOnlyList<DatasetRow> Eval) Split(IReadOnlyList<DatasetRow> rows, double fraction, int seed)
    {
        int evalCount = (int)Math.Ceiling(rows.Count * fraction);
        if (evalCount == 0 || evalCount >= rows.Count)
            throw new InvalidDataException($"eval_split {fraction} of {rows.Count} rows leaves {(evalCount == 0 ? "no row for evaluation" : "no row for training")}.");
        var held = EpochOrder.For(rows.Count, 0, seed, shuffle: true).Take(evalCount).ToHashSet();
        return ([.. rows.Where((_, i) => !held.Contains(i))], [.. rows.Where((_, i) => held.Contains(i))]);
    }
}
