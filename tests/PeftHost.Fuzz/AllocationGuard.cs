namespace PeftHost.Fuzz;

/// <summary>
/// Fails an execution that allocated far more managed memory than its input could justify: a length or
/// count field believed without checking. The bound is generous (parsers build dictionaries, strings and
/// regexes from their input) but linear in the input, so a lying 4-byte count cannot pass.
/// </summary>
internal readonly struct AllocationGuard(string target, int inputLength) : IDisposable
{
    /// <summary>Bytes allowed whatever the input (tokenizer libraries allocate tables up front).</summary>
    public const long FixedAllowance = 64L << 20;

    /// <summary>Bytes allowed per input byte.</summary>
    public const long PerInputByte = 4096;

    private readonly long _start = GC.GetAllocatedBytesForCurrentThread();

    public void Check()
    {
        long allocated = GC.GetAllocatedBytesForCurrentThread() - _start;
        long limit = FixedAllowance + PerInputByte * inputLength;
        if (allocated > limit)
            throw new FuzzOracleException($"{target}: {allocated} bytes allocated for a {inputLength}-byte input (limit {limit}): an unchecked length or count.");
    }

    public void Dispose()
    {
    }
}
