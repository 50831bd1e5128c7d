using PeftHost.Abstractions.State;

namespace PeftHost.Abstractions.Tuning;

/// <summary>
/// A tuner model that can replace an adapter's weights in place (PEFT's <c>hotswap=True</c>): no
/// re-injection, no new buffers, so compiled or captured graphs and memory stay as they are.
/// </summary>
public interface IHotswapModel : ITunerModel
{
    /// <summary>
    /// Pads every adapter to <paramref name="targetRank"/> (zeros, so outputs do not change), so that
    /// adapters of any rank up to it can later be swapped into the same buffers.
    /// </summary>
    void PrepareForHotswap(int targetRank);

    /// <summary>
    /// Copies <paramref name="state"/>'s weights and scaling into adapter <paramref name="adapter"/> in place.
    /// </summary>
    /// <exception cref="InvalidDataException">The new adapter targets other modules, has a rank above the prepared one, or another shape: the message says which.</exception>
    void Hotswap(string adapter, AdapterState state);
}
