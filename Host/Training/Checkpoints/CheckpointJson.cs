using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftHost.Training.Checkpoints;

/// <summary>How checkpoint JSON files are written (indent 2, as transformers writes trainer_state.json) and read.</summary>
public static class CheckpointJson
{
    /// <summary>Indented, non-ASCII kept.</summary>
    public static JsonSerializerOptions Options { get; } = new() { WriteIndented = true, IndentSize = 2, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Reads a JSON object file; a missing or malformed file is an error naming it.</summary>
    public static JsonObject Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} is missing: the checkpoint is incomplete.", path);
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
    }
}
