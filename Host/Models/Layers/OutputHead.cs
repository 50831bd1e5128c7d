using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Models.Layers;

/// <summary>The language-model head of the causal LMs: a bias-free Linear, tied to the token embedding when the config says so.</summary>
internal static class OutputHead
{
    /// <summary>
    /// A Linear hidden → vocab; with <paramref name="tiedTo"/> it shares that embedding's Parameter
    /// (one tensor, two names), as transformers' <c>tie_weights</c> does.
    /// </summary>
    public static Linear Create(long hidden, long vocab, Embedding? tiedTo)
    {
        var head = nn.Linear(hidden, vocab, hasBias: false);
        if (tiedTo is null) return head;
        Parameter own = head.weight!;
        head.weight = tiedTo.weight!;
        own.Dispose();
        return head;
    }
}
