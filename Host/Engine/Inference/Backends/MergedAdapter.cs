namespace PeftHost.Engine.Inference.Backends;

/// <summary>An adapter a backend merged into its weights, and why it could not apply it unmerged.</summary>
/// <param name="Name">The adapter's name.</param>
/// <param name="Reason">Why it was merged.</param>
public sealed record MergedAdapter(string Name, string Reason);
