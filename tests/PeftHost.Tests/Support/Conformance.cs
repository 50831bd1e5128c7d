namespace PeftHost.Tests.Support;

/// <summary>shared/conformance: beside the repository (CI clones main with shared/ beside it), or PEFTHOST_CONFORMANCE.</summary>
internal static class Conformance
{
    public static string Root
    {
        get
        {
            if (Environment.GetEnvironmentVariable("PEFTHOST_CONFORMANCE") is { Length: > 0 } env) return env;
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "shared", "conformance");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("shared/conformance not found above " + AppContext.BaseDirectory + " (set PEFTHOST_CONFORMANCE).");
        }
    }
}
