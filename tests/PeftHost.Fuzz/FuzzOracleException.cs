namespace PeftHost.Fuzz;

/// <summary>A target's verdict that an input exposed a defect: an inconsistent read, an unbounded allocation, a clean error that names nothing.</summary>
public sealed class FuzzOracleException(string message, Exception? inner = null) : Exception(message, inner);
