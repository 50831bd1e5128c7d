namespace PeftHost.Fuzz;

/// <summary>What a target made of one input: read correctly, or refused with a clean error.</summary>
public enum FuzzOutcome
{
    /// <summary>The input was read, and what was read passed the target's consistency checks.</summary>
    Accepted,

    /// <summary>The input was refused with an exception type the public API documents for it, naming the file, key or field.</summary>
    Rejected,
}

/// <summary>
/// One parser of outside data driven by raw bytes. <see cref="Execute"/> returns the outcome; any
/// other exception escaping it (NullReferenceException, IndexOutOfRangeException, OverflowException,
/// an undocumented type, a clean type whose message names nothing, an inconsistent read, an
/// unbounded allocation) is a crash, for AFL++ and for the mutation tests alike.
/// </summary>
public abstract class FuzzTarget
{
    /// <summary>With PEFTHOST_FUZZ_VERBOSE=1 every clean error's message goes to stderr (for --replay).</summary>
    public static bool Verbose { get; set; } = Environment.GetEnvironmentVariable("PEFTHOST_FUZZ_VERBOSE") == "1";

    /// <summary>The name used by <c>tools/fuzz.sh TARGET</c> and the corpus folder.</summary>
    public abstract string Name { get; }

    /// <summary>What the target reads, for <c>--list</c>.</summary>
    public abstract string Description { get; }

    /// <summary>Runs the parser on <paramref name="input"/>.</summary>
    public FuzzOutcome Execute(byte[] input)
    {
        using var guard = new AllocationGuard(Name, input.Length);
        FuzzOutcome outcome;
        try
        {
            Run(input);
            outcome = FuzzOutcome.Accepted;
        }
        catch (Exception e) when (IsCleanError(e))
        {
            if (string.IsNullOrWhiteSpace(e.Message) || !NamesItsSubject(e.Message))
                throw new FuzzOracleException($"{Name}: a {e.GetType().Name} whose message names no file, key or field: \"{e.Message}\"", e);
            if (Verbose) Console.Error.WriteLine($"{e.GetType().Name}: {e.Message}");
            outcome = FuzzOutcome.Rejected;
        }
        guard.Check();
        return outcome;
    }

    /// <summary>Reads the input as the host would, then checks what was read (throwing <see cref="FuzzOracleException"/> when inconsistent).</summary>
    protected abstract void Run(byte[] input);

    /// <summary>The exception types the parser's public API documents for bad input.</summary>
    protected abstract bool IsCleanError(Exception e);

    /// <summary>Whether a clean error's message says where the problem is (by default: it names the scratch file).</summary>
    protected virtual bool NamesItsSubject(string message) => message.Contains(FuzzScratch.Folder, StringComparison.Ordinal);

    /// <summary>Fails the read as inconsistent.</summary>
    protected FuzzOracleException Inconsistent(string what) => new($"{Name}: {what}");
}
