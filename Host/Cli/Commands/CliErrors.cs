using PeftHost.Engine.Errors;

namespace PeftHost.Cli.Commands;

/// <summary>
/// How a command reports an error: one line on stderr ("error: ..."), the exception's full details only with
/// <c>--verbose</c>, and the exit code of <see cref="ExitCodes"/>. Exceptions need no catch in a command: Program's
/// handler (<see cref="CliInvocation"/>) reports every one that leaves it through <see cref="Report"/>.
/// </summary>
internal static class CliErrors
{
    /// <summary>Whether <paramref name="e"/> is about the user's input (exit code 2) rather than a failure (1).</summary>
    public static bool IsUserError(Exception e) => ErrorClassifier.Classify(e) == ErrorKind.Input;

    /// <summary>A command's own check of its options or inputs failed: prints the reason, returns <see cref="ExitCodes.Usage"/>.</summary>
    public static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return ExitCodes.Usage;
    }

    /// <summary>
    /// Prints the one line for <paramref name="e"/> (with <paramref name="verbose"/>, then the full exception with its
    /// stack trace) and returns its exit code.
    /// </summary>
    public static int Report(Exception e, bool verbose)
    {
        ErrorKind kind = ErrorClassifier.Classify(e);
        Console.Out.Flush();
        string line = kind == ErrorKind.Interrupted ? "interrupted" : "error: " + ErrorClassifier.Describe(e);
        if (!verbose && !ErrorClassifier.IsDocumented(e)) line += " (a defect in pefthost: --verbose shows where)";
        Console.Error.WriteLine(line);
        if (verbose) Console.Error.WriteLine(e.ToString());
        return ExitCodes.For(kind);
    }
}
