using PeftHost.Models;

namespace PeftHost.Fuzz.Targets;

/// <summary>inputs.json (<c>pefthost logits --inputs</c>) through <see cref="ModelInputs.ReadArrays"/>, the parse before any tensor is made.</summary>
public sealed class InputsJsonTarget : FuzzTarget
{
    /// <inheritdoc />
    public override string Name => "inputs-json";

    /// <inheritdoc />
    public override string Description => "inputs.json: input_ids, attention_mask, token_type_ids as rectangular integer matrices";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        string path = FuzzScratch.Fresh("inputs.json", input);
        ModelInputs.Arrays a = ModelInputs.ReadArrays(path);
        int rows = a.InputIds.GetLength(0), columns = a.InputIds.GetLength(1);
        if (rows == 0 || columns == 0) throw Inconsistent($"accepted an empty {rows}x{columns} input_ids");
        foreach (long[,]? other in new[] { a.AttentionMask, a.TokenTypeIds })
            if (other is not null && (other.GetLength(0) != rows || other.GetLength(1) != columns))
                throw Inconsistent($"accepted a {other.GetLength(0)}x{other.GetLength(1)} matrix beside {rows}x{columns} input_ids");
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is InvalidDataException;
}
