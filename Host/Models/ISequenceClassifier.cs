using PeftHost.Models.Config;
using static TorchSharp.torch;

namespace PeftHost.Models;

/// <summary>An encoder with a classification head: logits [batch, num_labels].</summary>
public interface ISequenceClassifier
{
    /// <summary>The model's config.</summary>
    ModelConfig Config { get; }

    /// <summary>Logits [batch, num_labels]; <paramref name="attentionMask"/> marks padding with 0, <paramref name="tokenTypeIds"/> default to 0.</summary>
    /// <exception cref="ModelInputException">An id or token type is out of range, a shape, dtype or device is wrong, the sequence exceeds the context, or the mask holds other values than 0/1 (all checked before libtorch).</exception>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null);
}
