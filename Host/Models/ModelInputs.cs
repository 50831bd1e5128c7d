using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>
/// A batch of token ids from JSON: <c>{"input_ids": [[...]], "attention_mask": [[...]], "token_type_ids": [[...]]}</c>
/// (the last two optional); every row the same length.
/// </summary>
public sealed class ModelInputs : IDisposable
{
    private ModelInputs(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
    }

    /// <summary>[batch, seq], int64.</summary>
    public Tensor InputIds { get; }

    /// <summary>[batch, seq], int64 (1 = token, 0 = padding), or null.</summary>
    public Tensor? AttentionMask { get; }

    /// <summary>[batch, seq], int64, or null.</summary>
    public Tensor? TokenTypeIds { get; }

    /// <summary>Reads an inputs file.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed, ragged, or the optional arrays do not match input_ids' shape.</exception>
    public static ModelInputs Read(string path)
    {
        Arrays a = ReadArrays(path);
        return new ModelInputs(torch.tensor(a.InputIds), a.AttentionMask is null ? null : torch.tensor(a.AttentionMask), a.TokenTypeIds is null ? null : torch.tensor(a.TokenTypeIds));
    }

    /// <summary>An inputs file's matrices, [batch, seq] each (the optional ones null when absent).</summary>
    public sealed record Arrays(long[,] InputIds, long[,]? AttentionMask, long[,]? TokenTypeIds);

    /// <summary>Reads and checks an inputs file without making tensors.</summary>
    /// <exception cref="InvalidDataException">The JSON is malformed, ragged, or the optional arrays do not match input_ids' shape.</exception>
    public static Arrays ReadArrays(string path)
    {
        JsonObject json;
        // Duplicate keys are refused while parsing (JsonObject would throw ArgumentException when first read).
        try { json = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object."); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e); }
        long[,] ids = Matrix(json, "input_ids", path) ?? throw new InvalidDataException($"{path}: no input_ids.");
        long[,]? mask = Matrix(json, "attention_mask", path);
        long[,]? types = Matrix(json, "token_type_ids", path);
        foreach ((string name, long[,]? m) in new[] { ("attention_mask", mask), ("token_type_ids", types) })
            if (m is not null && (m.GetLength(0) != ids.GetLength(0) || m.GetLength(1) != ids.GetLength(1)))
                throw new InvalidDataException($"{path}: {name} is {m.GetLength(0)}x{m.GetLength(1)} but input_ids is {ids.GetLength(0)}x{ids.GetLength(1)}.");
        return new Arrays(ids, mask, types);
    }

    /// <summary>Moves the tensors to a device.</summary>
    public ModelInputs To(Device device) => device.type == DeviceType.CPU ? this
        : new ModelInputs(InputIds.to(device), AttentionMask?.to(device), TokenTypeIds?.to(device));

    private static long[,]? Matrix(JsonObject json, string key, string path)
    {
        if (json[key] is null) return null;
        if (json[key] is not JsonArray rows || rows.Count == 0 || rows.Any(r => r is not JsonArray))
            throw new InvalidDataException($"{path}: {key} must be a non-empty array of arrays of integers.");
        int width = rows[0]!.AsArray().Count;
        if (width == 0) throw new InvalidDataException($"{path}: {key} rows are empty.");
        var result = new long[rows.Count, width];
        for (int i = 0; i < rows.Count; i++)
        {
            JsonArray row = rows[i]!.AsArray();
            if (row.Count != width) throw new InvalidDataException($"{path}: {key} row {i} has {row.Count} entries, row 0 has {width}; pad the rows to one length.");
            for (int j = 0; j < width; j++)
            {
                try { result[i, j] = row[j]!.GetValue<long>(); }
                catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
                {
                    throw new InvalidDataException($"{path}: {key}[{i}][{j}] is not an integer.");
                }
            }
        }
        return result;
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask?.Dispose();
        TokenTypeIds?.Dispose();
    }
}
