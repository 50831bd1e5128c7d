using System.Text.Json;

namespace PeftHost.Formats.Safetensors;

/// <summary>
/// A model's tensors across one safetensors file or a sharded checkpoint
/// (<c>model.safetensors.index.json</c> + shards), opened through memory maps. Pickle checkpoints
/// (<c>pytorch_model.bin</c>) are refused: loading them can run arbitrary code.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>The single-file checkpoint name.</summary>
    public const string SingleFileName = "model.safetensors";

    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;

    private SafetensorsCheckpoint(string source, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner, IReadOnlyDictionary<string, string> metadata)
    {
        Source = source;
        _files = files;
        _owner = owner;
        Metadata = metadata;
    }

    /// <summary>The file or index the checkpoint was opened from.</summary>
    public string Source { get; }

    /// <summary>The tensor names, sorted.</summary>
    public IReadOnlyList<string> Names => [.. _owner.Keys.Order(StringComparer.Ordinal)];

    /// <summary>The single file's <c>__metadata__</c>, or the index's <c>metadata</c> (values as text).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The files opened (one, or every shard).</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Whether the checkpoint holds a tensor of that name.</summary>
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>The file that holds a tensor.</summary>
    public SafetensorsFile FileOf(string name) =>
        _owner.TryGetValue(name, out SafetensorsFile? f) ? f : throw new KeyNotFoundException($"No tensor '{name}' in checkpoint '{Source}'.");

    /// <summary>A tensor's header entry.</summary>
    public SafetensorsTensorInfo Info(string name) => FileOf(name).Info(name);

    /// <summary>
    /// Opens a checkpoint from a model folder (index first, then <c>model.safetensors</c>, then a
    /// folder's only <c>.safetensors</c> file), a <c>.safetensors</c> file or an index file.
    /// </summary>
    /// <exception cref="InvalidDataException">Only a pickle checkpoint is there, or a file or the index is malformed.</exception>
    /// <exception cref="FileNotFoundException">Nothing loadable is there, or a shard named by the index is missing.</exception>
    public static SafetensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path)) return OpenFolder(path);
        if (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".bin.index.json", StringComparison.OrdinalIgnoreCase))
            throw PickleRefused(path, Path.GetFileName(path));
        if (!File.Exists(path)) throw new FileNotFoundException($"No checkpoint at '{path}'.", path);
        if (path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
        return OpenSingle(path);
    }

    private static SafetensorsCheckpoint OpenFolder(string folder)
    {
        string index = Path.Combine(folder, SafetensorsWriter.IndexFileName);
        if (File.Exists(index)) return OpenIndex(index);
        string single = Path.Combine(folder, SingleFileName);
        if (File.Exists(single)) return OpenSingle(single);
        string[] any = Directory.GetFiles(folder, "*.safetensors");
        if (any.Length == 1) return OpenSingle(any[0]);
        if (any.Length > 1)
            throw new FileNotFoundException($"'{folder}' holds several .safetensors files ({string.Join(", ", any.Select(Path.GetFileName).Order())}) but no {SafetensorsWriter.IndexFileName} or {SingleFileName}: name the file to load.");
        string[] pickles = Directory.GetFiles(folder, "*.bin").Concat(Directory.GetFiles(folder, "*.bin.index.json")).Concat(Directory.GetFiles(folder, "*.pt")).Concat(Directory.GetFiles(folder, "*.pth")).ToArray();
        if (pickles.Length > 0) throw PickleRefused(folder, string.Join(", ", pickles.Select(Path.GetFileName).Order()));
        throw new FileNotFoundException($"No safetensors checkpoint in '{folder}': expected {SingleFileName} or {SafetensorsWriter.IndexFileName}.");
    }

    private static SafetensorsCheckpoint OpenSingle(string file)
    {
        SafetensorsFile f = SafetensorsFile.Open(file);
        return new SafetensorsCheckpoint(file, [f], f.Tensors.ToDictionary(t => t.Name, _ => f, StringComparer.Ordinal), f.Metadata);
    }

    private static SafetensorsCheckpoint OpenIndex(string index)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(index))!;
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            byte[] bytes = File.ReadAllBytes(index);
            // JsonDocument checks UTF-8 only when a string is read: refuse a file that is not UTF-8 here.
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new InvalidDataException($"Invalid checkpoint index '{index}': not valid UTF-8 JSON.");
            using JsonDocument doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"Invalid checkpoint index '{index}': no weight_map object.");
            foreach (JsonProperty p in map.EnumerateObject())
            {
                string shard = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : throw new InvalidDataException($"Invalid checkpoint index '{index}': tensor '{p.Name}' maps to a non-string.");
                // A shard is a file beside the index, never a path elsewhere.
                if (shard.Length == 0 || shard != Path.GetFileName(shard) || shard is "." or "..")
                    throw new InvalidDataException($"Invalid checkpoint index '{index}': tensor '{p.Name}' maps to '{shard}', which is not a file name in the index's folder.");
                if (!weightMap.TryAdd(p.Name, shard)) throw new InvalidDataException($"Invalid checkpoint index '{index}': tensor '{p.Name}' is listed twice.");
            }
            if (doc.RootElement.TryGetProperty("metadata", out JsonElement meta) && meta.ValueKind == JsonValueKind.Object)
                foreach (JsonProperty p in meta.EnumerateObject())
                    metadata[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Invalid checkpoint index '{index}': not valid JSON ({e.Message}).", e);
        }

        var files = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach ((string tensor, string shard) in weightMap)
            {
                if (!files.TryGetValue(shard, out SafetensorsFile? file))
                {
                    string shardPath = Path.Combine(folder, shard);
                    if (!File.Exists(shardPath))
                        throw new FileNotFoundException($"Checkpoint index '{index}' puts tensor '{tensor}' in shard '{shard}', which does not exist.", shardPath);
                    file = SafetensorsFile.Open(shardPath);
                    files[shard] = file;
                }
                if (!file.Contains(tensor))
                    throw new InvalidDataException($"Checkpoint index '{index}' puts tensor '{tensor}' in shard '{shard}', but that shard does not hold it.");
                owner[tensor] = file;
            }
        }
        catch
        {
            foreach (SafetensorsFile f in files.Values) f.Dispose();
            throw;
        }
        return new SafetensorsCheckpoint(index, [.. files.Values], owner, metadata);
    }

    private static InvalidDataException PickleRefused(string where, string files) =>
        new($"'{where}' holds only a pickle checkpoint ({files}). PeftHost never loads pickle files, since unpickling can run arbitrary code: " +
            "convert it to safetensors first, e.g. in Python: model.save_pretrained(folder, safe_serialization=True).");

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (SafetensorsFile f in _files) f.Dispose();
    }
}
