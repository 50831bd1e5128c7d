using System.Reflection;
using System.Text.Json;
using PeftHost.Abstractions.Config;
using PeftHost.Formats.Gguf;
using PeftHost.Tokenizers;

namespace PeftHost.Engine.Errors;

/// <summary>
/// The one mapping from an exception to what it means for the user (<see cref="ErrorKind"/>) and to the one
/// line that says what is wrong. The engine's documented error types for bad input (a config, a file, a value,
/// a name, an unsupported request) are <see cref="ErrorKind.Input"/>; I/O, devices, plugin faults and anything
/// unexpected are <see cref="ErrorKind.Failure"/>; a cancellation is <see cref="ErrorKind.Interrupted"/>.
/// </summary>
public static class ErrorClassifier
{
    /// <summary>The exception that says what happened: wrappers (reflection, type initialisers, a task's single error) are looked through.</summary>
    public static Exception Cause(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case TypeInitializationException { InnerException: { } inner }: e = inner; continue;
                case AggregateException a when a.InnerExceptions.Count == 1: e = a.InnerExceptions[0]; continue;
                default: return e;
            }
        }
    }

    /// <summary>What <paramref name="e"/> means for the user.</summary>
    public static ErrorKind Classify(Exception e) => Cause(e) switch
    {
        OperationCanceledException => ErrorKind.Interrupted,
        // Missing inputs are IOExceptions too: they are checked before the other I/O errors.
        FileNotFoundException or DirectoryNotFoundException => ErrorKind.Input,
        IOException or UnauthorizedAccessException => ErrorKind.Failure,
        // ArgumentException covers ModelInputException and ArgumentOutOfRangeException; JsonException a file that is not JSON.
        TunerConfigException or InvalidDataException or ArgumentException or KeyNotFoundException or NotSupportedException
            or FormatException or JsonException or GgufFormatException or TokenizerLoadException or ChatTemplateException => ErrorKind.Input,
        _ => ErrorKind.Failure,
    };

    /// <summary>
    /// One line saying what is wrong: the cause's message up to its first line break (a native error's
    /// message goes on with its C++ stack, which <c>--verbose</c> shows). An exception type the engine does not
    /// document for errors (a defect) is named, so a report says what broke.
    /// </summary>
    public static string Describe(Exception e)
    {
        Exception cause = Cause(e);
        string message = FirstLine(cause.Message);
        return IsDocumented(cause) ? message : $"{cause.GetType().Name}: {message}";
    }

    /// <summary>
    /// Whether the cause of <paramref name="e"/> is an error type the engine documents (input errors, I/O, "not in this
    /// state", PeftHost's own types); anything else reaching a user (a null reference, an index out of range, a native
    /// <c>ExternalException</c>) is a defect.
    /// </summary>
    public static bool IsDocumented(Exception e)
    {
        Exception cause = Cause(e);
        return Classify(cause) != ErrorKind.Failure || cause is IOException or UnauthorizedAccessException or InvalidOperationException or NotFiniteNumberException
            || cause.GetType().Namespace?.StartsWith("PeftHost.", StringComparison.Ordinal) == true;
    }

    private static string FirstLine(string message)
    {
        string trimmed = message.Trim();
        int end = trimmed.IndexOfAny(['\r', '\n']);
        return end < 0 ? trimmed : trimmed[..end].TrimEnd();
    }
}
