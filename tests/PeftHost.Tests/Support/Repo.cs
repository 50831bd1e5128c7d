using System.Diagnostics;

namespace PeftHost.Tests.Support;

/// <summary>The repository root (where Host.sln is) and running dotnet commands in it.</summary>
internal static class Repo
{
    public static string Root
    {
        get
        {
            for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
                if (File.Exists(Path.Combine(d, "Host.sln"))) return d;
            throw new DirectoryNotFoundException("Host.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static (int ExitCode, string Output) Dotnet(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }
}
