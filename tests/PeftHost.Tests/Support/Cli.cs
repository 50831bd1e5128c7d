using System.Diagnostics;
using System.Reflection;

namespace PeftHost.Tests.Support;

/// <summary>Runs the built `pefthost` (same configuration as the tests) as a user would.</summary>
internal static class Cli
{
    public static string Dll
    {
        get
        {
            string config = typeof(Cli).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
            return Path.Combine(Repo.Root, "Host", "Cli", "bin", config, "net10.0", "pefthost.dll");
        }
    }

    public static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException("pefthost " + string.Join(' ', args)); }
        return (p.ExitCode, output, err.Result);
    }
}
