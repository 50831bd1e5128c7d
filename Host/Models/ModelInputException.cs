namespace PeftHost.Models;

/// <summary>
/// An input handed to a model entry point (token ids, attention mask, embeddings, positions, KV cache,
/// generation settings) is not one the model can run: thrown before anything reaches libtorch. The
/// message names the parameter, what was given and what was expected.
/// </summary>
public sealed class ModelInputException(string parameter, string message) : ArgumentException(message, parameter);
