using System.CommandLine;
using System.CommandLine.Invocation;
using System.Runtime.InteropServices;
using PeftHost.Cli.Commands;

namespace PeftHost.Cli;

/// <summary>
/// Runs the parsed command line with one error policy for every command (<see cref="ExitCodes"/>): a parse
/// error is one line and exit 2; an exception leaving a command is one line (<see cref="CliErrors.Report"/>),
/// its stack trace only with <c>--verbose</c>; Ctrl+C cancels <see cref="Cancellation"/>, which a long command
/// polls to stop cleanly (exit 130), and ends the process with 130 after a grace period if it does not.
/// </summary>
internal static class CliInvocation
{
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);
    private static readonly CancellationTokenSource Interrupt = new();
    private static int _exitCode = ExitCodes.Interrupted;

    /// <summary>Cancelled on Ctrl+C (SIGINT) or SIGTERM: a command stops at its next step and throws <see cref="OperationCanceledException"/>.</summary>
    public static CancellationToken Cancellation => Interrupt.Token;

    /// <summary>Invokes <paramref name="parsed"/>'s command and returns the process exit code.</summary>
    public static int Run(ParseResult parsed, Option<bool> verbose)
    {
        if (parsed.Action is ParseErrorAction)
        {
            string command = string.Join(' ', Path(parsed.CommandResult));
            Console.Error.WriteLine($"error: {string.Join(" ", parsed.Errors.Select(e => e.Message))} (see {command} --help)");
            return ExitCodes.Usage;
        }
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            // System.CommandLine's own handler would print the stack trace and its termination handling covers
            // asynchronous actions only: both are this class's job.
            int code = parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null });
            return Interrupt.IsCancellationRequested ? _exitCode : code;
        }
        catch (Exception e)
        {
            int code = CliErrors.Report(e, parsed.GetValue(verbose));
            return code == ExitCodes.Interrupted ? _exitCode : code;
        }
    }

    private static void OnSignal(PosixSignalContext context)
    {
        // The process is not killed by the signal: the command gets the grace period to stop (files it writes
        // are atomic either way); a second signal ends it at once.
        context.Cancel = true;
        int code = context.Signal == PosixSignal.SIGTERM ? ExitCodes.Terminated : ExitCodes.Interrupted;
        if (Interrupt.IsCancellationRequested) Exit(code);
        _exitCode = code;
        Interrupt.Cancel();
        _ = Task.Delay(Grace).ContinueWith(_ => Exit(code), TaskScheduler.Default);
    }

    // The command did not stop: end the process now. Not Environment.Exit, whose exit handlers tear libtorch
    // down under threads still running in it (a segmentation fault instead of the exit code).
    private static void Exit(int code)
    {
        Console.Out.Flush();
        Console.Error.WriteLine("interrupted");
        if (OperatingSystem.IsWindows()) Environment.Exit(code);
        ExitNow(code);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);

    private static IEnumerable<string> Path(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new Stack<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = result; r is not null; r = r.Parent)
            if (r is System.CommandLine.Parsing.CommandResult c) names.Push(c.Parent is null ? "pefthost" : c.Command.Name);
        return names;
    }
}
