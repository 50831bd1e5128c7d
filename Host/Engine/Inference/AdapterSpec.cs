namespace PeftHost.Engine.Inference;

/// <summary>An adapter to load: the name it is known by, its PEFT folder, and the scale it runs at unless a request says otherwise.</summary>
/// <param name="Name">The adapter's name (no '.', since names appear in parameter paths).</param>
/// <param name="Folder">PEFT's save_pretrained folder (adapter_config.json + adapter_model.safetensors).</param>
/// <param name="Scale">Multiplies the adapter's contribution (1 = as trained); backends that cannot scale refuse other values.</param>
public sealed record AdapterSpec(string Name, string Folder, double Scale = 1.0)
{
    /// <summary>An adapter named after its folder, as a user loading it would name it ('.' becomes '_'); <c>adapter_N</c> for a root folder.</summary>
    public static AdapterSpec FromFolder(string folder, int index = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))).Replace('.', '_');
        return new(name.Length > 0 ? name : $"adapter_{index + 1}", folder);
    }
}
