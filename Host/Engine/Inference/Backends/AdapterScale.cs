namespace PeftHost.Engine.Inference.Backends;

/// <summary>An adapter selected for a request and the scale it runs at (1 = as trained, 0 = off).</summary>
/// <param name="Name">The adapter's name.</param>
/// <param name="Scale">Multiplies the adapter's contribution.</param>
public readonly record struct AdapterScale(string Name, double Scale = 1.0);
