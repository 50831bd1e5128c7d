namespace PeftHost.Formats.Tests.Support;

/// <summary>
/// The shared conformance samples: $PEFTHOST_CONFORMANCE, or the first folder above the test
/// binary that holds shared/conformance (in CI the clone has shared/ beside it).
/// </summary>
internal static class Conformance
{
    public static string Root
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("PEFTHOST_CONFORMANCE");
            if (!string.IsNullOrEmpty(env))
                return Directory.Exists(env) ? env : throw new DirectoryNotFoundException($"PEFTHOST_CONFORMANCE is '{env}', which does not exist.");
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "shared", "conformance");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException($"No shared/conformance folder above {AppContext.BaseDirectory}; set PEFTHOST_CONFORMANCE.");
        }
    }

    public static string Case(string name) => Path.Combine(Root, name);
}
