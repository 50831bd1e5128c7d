using System.Security.Cryptography;
using System.Text;
using PeftHost.Formats;

namespace PeftHost.Engine.Export;

/// <summary>
/// Exported GGUF files kept between runs, under <c>$XDG_CACHE_HOME/pefthost/gguf</c> (or
/// <c>~/.cache/pefthost/gguf</c>), named by a key over the SHA-256 of every source file's content, the
/// export parameters and the exporter's format version: a changed checkpoint, tokenizer or adapter
/// gives a new file, an unchanged one is reused. Each file is written to a temporary name in the same
/// folder and renamed (<see cref="AtomicFile"/>): a reader never sees half a file, and concurrent first
/// uses each write a complete, identical file and the last rename wins.
/// </summary>
public sealed class GgufCache
{
    /// <summary>Bumped when an exporter's output changes, so files written by an older build are not reused.</summary>
    public const string FormatVersion = "pefthost-gguf-2";

    /// <summary>A cache in <paramref name="directory"/> (default <see cref="DefaultDirectory"/>).</summary>
    public GgufCache(string? directory = null)
    {
        Directory = Path.GetFullPath(directory ?? DefaultDirectory());
    }

    /// <summary>The folder holding the files.</summary>
    public string Directory { get; }

    /// <summary><c>$XDG_CACHE_HOME/pefthost/gguf</c>, or <c>~/.cache/pefthost/gguf</c> when XDG_CACHE_HOME is unset or not absolute.</summary>
    public static string DefaultDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg)
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "pefthost", "gguf");
    }

    /// <summary>
    /// The cached file for <paramref name="kind"/> made from <paramref name="sources"/> with
    /// <paramref name="parameters"/>; when absent, <paramref name="write"/> writes it to the stream
    /// first. Returns the path and whether it was written now.
    /// </summary>
    public (string Path, bool Created) GetOrCreate(string kind, IEnumerable<string> sources, string parameters, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string path = Path.Combine(Directory, $"{kind}-{Key(kind, sources, parameters)}.gguf");
        if (File.Exists(path)) return (path, false);
        AtomicFile.Write(path, write);
        return (path, true);
    }

    /// <summary>The key: SHA-256 over the kind, parameters, format version and each source's name and content hash (first 24 hex digits).</summary>
    public static string Key(string kind, IEnumerable<string> sources, string parameters)
    {
        ArgumentNullException.ThrowIfNull(sources);
        var text = new StringBuilder().Append(FormatVersion).Append('\n').Append(kind).Append('\n').Append(parameters).Append('\n');
        foreach (string source in sources)
        {
            if (!File.Exists(source)) throw new FileNotFoundException($"GGUF cache: source file not found: {source}", source);
            using FileStream s = File.OpenRead(source);
            text.Append(Path.GetFileName(source)).Append(' ').Append(Convert.ToHexStringLower(SHA256.HashData(s))).Append('\n');
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..24];
    }

    /// <summary>The files of a Hugging Face model folder an export reads: config.json, tokenizer.json, the safetensors weights and their index.</summary>
    public static IReadOnlyList<string> ModelSources(string modelFolder)
    {
        if (!System.IO.Directory.Exists(modelFolder)) throw new DirectoryNotFoundException($"Model folder not found: {Path.GetFullPath(modelFolder)}");
        var files = new List<string> { Path.Combine(modelFolder, "config.json") };
        foreach (string name in new[] { "tokenizer.json", "model.safetensors.index.json" })
        {
            string p = Path.Combine(modelFolder, name);
            if (File.Exists(p)) files.Add(p);
        }
        files.AddRange(System.IO.Directory.GetFiles(modelFolder, "*.safetensors").Order(StringComparer.Ordinal));
        return files;
    }

    /// <summary>The files of a PEFT adapter folder: adapter_config.json and adapter_model.safetensors.</summary>
    public static IReadOnlyList<string> AdapterSources(string adapterFolder) =>
        [Path.Combine(adapterFolder, "adapter_config.json"), Path.Combine(adapterFolder, "adapter_model.safetensors")];
}
