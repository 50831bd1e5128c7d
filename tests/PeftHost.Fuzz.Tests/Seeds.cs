namespace PeftHost.Fuzz.Tests;

/// <summary>The committed seed corpora (copied beside the tests by the fuzz project).</summary>
internal static class Seeds
{
    public static string Folder(string target) => Path.Combine(AppContext.BaseDirectory, "Corpus", target);

    public static IEnumerable<string> Files(string target) => Directory.GetFiles(Folder(target)).Order(StringComparer.Ordinal);

    public static byte[] Read(string target, string file) => File.ReadAllBytes(Path.Combine(Folder(target), file));
}
