using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>
/// A causal LM that runs packed rows: several documents per row, each with its own positions, none
/// attending to another (TRL's packing without cross-document attention).
/// </summary>
public interface IPackedCausalLM
{
    /// <summary>
    /// Logits [batch, seq, vocab]. <paramref name="positionIds"/> [batch, seq] restart at 0 for each
    /// document; <paramref name="sequenceIds"/> [batch, seq] number the documents (1, 2, ...; 0 = padding).
    /// </summary>
    Tensor ForwardPacked(Tensor inputIds, Tensor positionIds, Tensor sequenceIds);
}
