using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// A linear layer for an adapter's own factors (<c>lora_A.&lt;adapter&gt;</c>, <c>adapter_down</c>; contract 1.3):
/// y = x · Wᵀ + b, its weight [out, in] and bias [out] named <c>weight</c> and <c>bias</c> as in PEFT's files, and
/// initialised as <c>nn.Linear</c> initialises (Kaiming-uniform with a = √5, the same random draws; bias uniform in
/// ±1/√in).
/// </summary>
/// <remarks>
/// Prefer it to TorchSharp's <c>nn.Linear</c> for modules made per adapter: TorchSharp 0.107 makes its Linear
/// through the <c>Module(string)</c> constructor, which keeps 64 native bytes per module that nothing frees, so an
/// application adding and deleting adapters all day grows by them. Target modules of the base model stay
/// TorchSharp's <c>Linear</c>.
/// </remarks>
public sealed class AdapterLinear : nn.Module<Tensor, Tensor>
{
    private Parameter _weight;
    private Parameter? _bias;

    /// <summary>A layer from <paramref name="inFeatures"/> to <paramref name="outFeatures"/>, initialised as <c>nn.Linear</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public AdapterLinear(long inFeatures, long outFeatures, bool hasBias = true, Device? device = null, ScalarType? dtype = null)
        : base(NativeCustomModule.Create(nameof(AdapterLinear)), IntPtr.Zero)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        name = nameof(AdapterLinear);
        _weight = torch.empty(outFeatures, inFeatures, device: device, dtype: dtype).AsParameter();
        nn.init.kaiming_uniform_(_weight, a: Math.Sqrt(5));
        ConditionallyRegisterParameter(nameof(weight), _weight);
        if (hasBias)
        {
            _bias = torch.empty(outFeatures, device: device, dtype: dtype).AsParameter();
            double bound = 1 / Math.Sqrt(inFeatures);
            nn.init.uniform_(_bias, -bound, bound);
            ConditionallyRegisterParameter(nameof(bias), _bias);
        }
    }

    /// <summary>The input size.</summary>
    public long InFeatures => _weight.shape[1];

    /// <summary>The output size.</summary>
    public long OutFeatures => _weight.shape[0];

    /// <summary>The weight, [out, in]. Setting it frees the previous one (as <c>nn.Linear</c>'s setter does).</summary>
    /// <remarks>TorchSharp's <c>to()</c> sets it through reflection, by its parameter name; hence the lower-case name.</remarks>
    public Parameter weight
    {
        get => _weight;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Handle == _weight.Handle) return;
            _weight.Dispose();
            _weight = (Parameter)value.DetachFromDisposeScope();
            ConditionallyRegisterParameter(nameof(weight), _weight);
        }
    }

    /// <summary>The bias, [out], or null. Setting it frees the previous one.</summary>
    public Parameter? bias
    {
        get => _bias;
        set
        {
            if (value is not null && value.Handle == _bias?.Handle) return;
            _bias?.Dispose();
            _bias = value?.DetachFromDisposeScope() as Parameter;
            ConditionallyRegisterParameter(nameof(bias), _bias);
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => nn.functional.linear(input, _weight, _bias);
}
