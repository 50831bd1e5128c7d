using PeftHost.Engine.Errors;

namespace PeftHost.Cli;

/// <summary>
/// The exit codes of every pefthost command (the README's table): one mapping, used by Program's handler
/// for every exception that leaves a command and by <see cref="Commands.CliErrors.Fail"/> for the commands' own checks.
/// </summary>
internal static class ExitCodes
{
    /// <summary>The command did what it was asked.</summary>
    public const int Success = 0;

    /// <summary>It failed although its input was acceptable: I/O, a device, a plugin fault, a check a benchmark makes.</summary>
    public const int Failure = 1;

    /// <summary>Usage or input error: a parse error of the command line, a bad option value, a bad or missing input file or field.</summary>
    public const int Usage = 2;

    /// <summary>Interrupted by Ctrl+C (SIGINT), or stopped by SIGTERM (128 + the signal number, as shells report it).</summary>
    public const int Interrupted = 130;

    /// <summary>SIGTERM (a service manager stopping the process).</summary>
    public const int Terminated = 143;

    /// <summary>The exit code of an error of this kind.</summary>
    public static int For(ErrorKind kind) => kind switch
    {
        ErrorKind.Input => Usage,
        ErrorKind.Interrupted => Interrupted,
        _ => Failure,
    };
}
