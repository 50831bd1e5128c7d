namespace PeftHost.Formats.Tests.Support;

/// <summary>
/// The conformance samples real transformers and PEFT wrote, committed under
/// tests/fixtures/conformance (copied from the project's shared reference folder; see its README).
/// </summary>
internal static class Conformance
{
    public static string Root
    {
        get
        {
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "tests", "fixtures", "conformance");
                if (File.Exists(Path.Combine(d, "Host.sln")) && Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No tests/fixtures/conformance in the repository above {AppContext.BaseDirectory}.");
        }
    }

    public static string Case(string name) => Path.Combine(Root, name);
}
