using PeftHost.Serving.Completions;

namespace PeftHost.Serving.OpenAi;

/// <summary>
/// The folder /v1/load_lora_adapter may load from: a <c>lora_path</c> (absolute, or relative to the root) must
/// resolve inside it without passing through a symbolic link, so a request can read no other folder of the machine.
/// </summary>
public sealed class AdapterRoot
{
    private readonly string _root;

    /// <summary>The root folder (it must exist).</summary>
    /// <exception cref="DirectoryNotFoundException">It does not.</exception>
    public AdapterRoot(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(root));
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"--adapter-root {full}: the folder does not exist.");
        _root = full;
    }

    /// <summary>The root's full path.</summary>
    public string Path => _root;

    /// <summary>The adapter folder <paramref name="loraPath"/> names, checked to lie inside the root.</summary>
    /// <exception cref="ServingRequestException">The path leaves the root, passes a symbolic link, or is not an adapter folder.</exception>
    public string Resolve(string loraPath)
    {
        ArgumentNullException.ThrowIfNull(loraPath);
        if (loraPath.Length == 0) throw new ServingRequestException("'lora_path' is empty.", "lora_path");
        string full = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(System.IO.Path.IsPathRooted(loraPath) ? loraPath : System.IO.Path.Combine(_root, loraPath)));
        if (!full.StartsWith(_root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ServingRequestException($"'lora_path' {loraPath} is outside the adapter root {_root} (--adapter-root): adapters load from under it only.", "lora_path");
        string current = _root;
        foreach (string part in full[(_root.Length + 1)..].Split(System.IO.Path.DirectorySeparatorChar))
        {
            current = System.IO.Path.Combine(current, part);
            if (new FileInfo(current).LinkTarget is not null)
                throw new ServingRequestException($"'lora_path' {loraPath} passes through the symbolic link {current}: adapters load from real folders under {_root} only.", "lora_path");
        }
        if (!Directory.Exists(full)) throw new ServingRequestException($"'lora_path' {loraPath}: no such folder under {_root}.", "lora_path");
        foreach (string file in Directory.GetFiles(full))
            if (new FileInfo(file).LinkTarget is not null)
                throw new ServingRequestException($"'lora_path' {loraPath}: {System.IO.Path.GetFileName(file)} is a symbolic link: adapters load from real files under {_root} only.", "lora_path");
        if (!File.Exists(System.IO.Path.Combine(full, "adapter_config.json")))
            throw new ServingRequestException($"'lora_path' {loraPath} has no adapter_config.json (expected PEFT's save_pretrained folder).", "lora_path");
        return full;
    }
}
