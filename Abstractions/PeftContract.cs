namespace PeftHost.Abstractions;

/// <summary>
/// The version of this contract. A plugin records the version it was compiled against (through
/// <see cref="Plugins.PeftPluginAttribute"/>); the host loads it only when the major versions are
/// equal and the plugin's minor version is not newer than the host's.
/// </summary>
public static class PeftContract
{
    /// <summary>The contract version, "major.minor".</summary>
    public const string Version = "1.3";

    /// <summary>The contract's major version.</summary>
    public static int Major => ParseVersion(Version).Major;

    /// <summary>The contract's minor version.</summary>
    public static int Minor => ParseVersion(Version).Minor;

    /// <summary>Parses a "major.minor" contract version.</summary>
    /// <exception cref="FormatException">The text is not "major.minor" with non-negative integers.</exception>
    public static (int Major, int Minor) ParseVersion(string version)
    {
        string[] parts = version.Split('.');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int major) || !int.TryParse(parts[1], out int minor) || major < 0 || minor < 0)
            throw new FormatException($"Contract version '{version}' is not of the form major.minor.");
        return (major, minor);
    }
}
