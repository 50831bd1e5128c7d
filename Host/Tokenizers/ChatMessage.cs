namespace PeftHost.Tokenizers;

/// <summary>One chat turn: a role (system, user, assistant) and its text.</summary>
/// <param name="Role">The role as chat templates name it: system, user or assistant.</param>
/// <param name="Content">The text of the turn.</param>
public sealed record ChatMessage(string Role, string Content);
