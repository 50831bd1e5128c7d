namespace PeftHost.Models.Config;

/// <summary>
/// <c>rope_scaling</c> of a Llama-family config: <c>linear</c> (positions divided by
/// <see cref="Factor"/>) or <c>llama3</c> (wavelength-dependent frequency scaling), as in
/// transformers' <c>modeling_rope_utils</c>.
/// </summary>
public sealed record RopeScaling(string Type, double Factor, double LowFreqFactor = 1, double HighFreqFactor = 4, int OriginalMaxPositions = 8192);
