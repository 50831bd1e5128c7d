namespace PeftHost.Formats.Tests.Support;

/// <summary>Files under the repository's tests/fixtures (made by the scripts under tools/, see each folder's README).</summary>
internal static class RepoFixtures
{
    public static string Path(params string[] parts)
    {
        for (string? d = AppContext.BaseDirectory; d is not null; d = System.IO.Path.GetDirectoryName(d))
        {
            string candidate = System.IO.Path.Combine([d, "tests", "fixtures", .. parts]);
            if (File.Exists(System.IO.Path.Combine(d, "Host.sln")) && (File.Exists(candidate) || Directory.Exists(candidate))) return candidate;
        }
        throw new FileNotFoundException($"No tests/fixtures/{string.Join('/', parts)} in the repository above {AppContext.BaseDirectory}.");
    }
}
