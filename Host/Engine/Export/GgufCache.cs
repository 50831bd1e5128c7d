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
/// uses each write a complete, identical file and the last rename wins. Beside a file that cannot be
/// made (an adapter GGUF-LoRA cannot express), a <c>.refused</c> note says why, so the next run does not
/// load the model to ask again.
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
    public (string Path, bool Created) GetOrCreate(string kind, IEnumerable<string> sources, string parameters, Action<Stream> write) =>
        GetOrCreate(kind, Key(kind, sources, parameters), write);

    /// <summary>As <see cref="GetOrCreate(string, IEnumerable{string}, string, Action{Stream})"/> for a key already computed (<see cref="Key"/>).</summary>
    public (string Path, bool Created) GetOrCreate(string kind, string key, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string path = PathOf(kind, key);
        if (File.Exists(path)) return (path, false);
        AtomicFile.Write(path, write);
        return (path, true);
    }

    /// <summary>Where the file of <paramref name="kind"/> and <paramref name="key"/> is (or would be) kept.</summary>
    public string PathOf(string kind, string key) => Path.Combine(Directory, $"{kind}-{key}.gguf");

    /// <summary>
    /// Why the file of <paramref name="kind"/> and <paramref name="key"/> was not written, when an earlier
    /// run found that it cannot be (<see cref="WriteRefusal"/>: an adapter GGUF-LoRA cannot express, to be
    /// merged instead), so the question is not asked again; null when no run said so.
    /// </summary>
    public string? ReadRefusal(string kind, string key)
    {
        string path = Path.ChangeExtension(PathOf(kind, key), ".refused");
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    /// <summary>Records, atomically, why the file of <paramref name="kind"/> and <paramref name="key"/> cannot be written.</summary>
    public void WriteRefusal(string kind, string key, string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        AtomicFile.WriteAllBytes(Path.ChangeExtension(PathOf(kind, key), ".refused"), System.Text.Encoding.UTF8.GetBytes(reason));
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
