namespace PeftHost.Engine.Errors;

/// <summary>
/// What an exception that reached a user means for them (<see cref="ErrorClassifier"/>): the CLI's exit
/// codes and a server's status codes are both derived from it, so every front end tells them apart the same way.
/// </summary>
public enum ErrorKind
{
    /// <summary>The input is wrong (a bad file, field, value, name or option): the user can fix it; the CLI exits 2.</summary>
    Input,

    /// <summary>The work failed although the input was acceptable (I/O, a device, a plugin fault): the CLI exits 1.</summary>
    Failure,

    /// <summary>The work was cancelled (Ctrl+C): the CLI exits 130.</summary>
    Interrupted,
}
