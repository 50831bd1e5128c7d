using System.Security.Cryptography;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// An allow-list of SHA-256 hashes of plugin files. When it is on, every file of a plugin's folder
/// that can hold code (.dll) must have its hash listed, or the plugin is refused.
/// </summary>
public sealed class PluginTrustList
{
    private readonly HashSet<string> _allowed;

    /// <summary>An allow-list of lowercase or uppercase hex SHA-256 hashes.</summary>
    public PluginTrustList(IEnumerable<string> sha256Hashes) =>
        _allowed = new HashSet<string>(sha256Hashes.Select(h => h.Trim().ToLowerInvariant()).Where(h => h.Length > 0), StringComparer.Ordinal);

    /// <summary>Reads an allow-list file: one hash per line (optionally followed by a file name, as sha256sum writes); '#' starts a comment.</summary>
    public static PluginTrustList FromFile(string path)
    {
        var hashes = new List<string>();
        int lineNumber = 0;
        foreach (string raw in File.ReadLines(path))
        {
            lineNumber++;
            string line = raw.Split('#')[0].Trim();
            if (line.Length == 0) continue;
            string hash = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0];
            if (hash.Length != 64 || !hash.All(Uri.IsHexDigit))
                throw new InvalidDataException($"{path}:{lineNumber}: '{hash}' is not a SHA-256 hash (64 hex digits).");
            hashes.Add(hash);
        }
        return new PluginTrustList(hashes);
    }

    /// <summary>The hex SHA-256 of a file.</summary>
    public static string HashFile(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Null when every code file of the plugin folder is allowed, else the reason it is refused.</summary>
    public string? Check(string pluginFolder)
    {
        foreach (string file in Directory.EnumerateFiles(pluginFolder, "*.dll", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string hash = HashFile(file);
            if (!_allowed.Contains(hash))
                return $"{file} (SHA-256 {hash}) is not in the plugin trust list: unknown or changed file.";
        }
        return null;
    }
}
