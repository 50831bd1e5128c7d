using PeftHost.Abstractions.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Plugins.Lora;

/// <summary>
/// LoRA on a linear layer: y = base(x) + B(A(dropout(x))) * scaling, with A: in → r and B: r → out,
/// registered as <c>lora_A.&lt;adapter&gt;</c> and <c>lora_B.&lt;adapter&gt;</c> as in PEFT. The
/// low-rank path is computed as two small products; the full delta is never formed here.
/// </summary>
public sealed class LoraLinear : TunerLayer
{
    private readonly AdapterModuleDict<Linear> lora_A = new();
    private readonly AdapterModuleDict<Linear> lora_B = new();
    private readonly AdapterModuleDict<nn.Module<Tensor, Tensor>> lora_dropout = new();
    private readonly Dictionary<string, double> _scaling = new(StringComparer.Ordinal);

    /// <summary>Wraps a linear layer of shape out x in.</summary>
    public LoraLinear(Linear baseLayer) : base(nameof(LoraLinear), baseLayer)
    {
        InFeatures = baseLayer.weight!.shape[1];
        OutFeatures = baseLayer.weight.shape[0];
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        register_module("lora_dropout", lora_dropout);
    }

    /// <summary>The base layer's input size.</summary>
    public long InFeatures { get; }

    /// <summary>The base layer's output size.</summary>
    public long OutFeatures { get; }

    /// <inheritdoc />
    public override IReadOnlyCollection<string> Adapters => _scaling.Keys;

    /// <summary>The scaling of an adapter.</summary>
    public double Scaling(string adapter) => _scaling[adapter];

    /// <summary>Adds an adapter of rank <paramref name="r"/>, initialised as PEFT does.</summary>
    public void AddAdapter(string adapter, int r, double scaling, double dropout, string init)
    {
        Tensor weight = BaseLayer is Linear l ? l.weight! : throw new InvalidOperationException("LoRA base layer is not Linear.");
        var a = nn.Linear(InFeatures, r, hasBias: false, device: weight.device, dtype: weight.dtype);
        var b = nn.Linear(r, OutFeatures, hasBias: false, device: weight.device, dtype: weight.dtype);
        using (no_grad())
        {
            switch (init)
            {
                case "true":
                    nn.init.kaiming_uniform_(a.weight!, a: Math.Sqrt(5));
                    nn.init.zeros_(b.weight!);
                    break;
                case "gaussian":
                    nn.init.normal_(a.weight!, std: 1.0 / r);
                    nn.init.zeros_(b.weight!);
                    break;
                // "false": keep nn.Linear's own initialisation of both (a non-zero delta, for tests).
            }
        }
        lora_A.Add(adapter, a);
        lora_B.Add(adapter, b);
        lora_dropout.Add(adapter, dropout > 0 ? nn.Dropout(dropout) : nn.Identity());
        _scaling[adapter] = scaling;
    }

    /// <inheritdoc />
    public override void DeleteAdapter(string adapter)
    {
        if (!_scaling.Remove(adapter)) return;
        lora_A.Remove(adapter);
        lora_B.Remove(adapter);
        lora_dropout.Remove(adapter);
    }

    /// <inheritdoc />
    protected override Tensor ForwardWithAdapters(Tensor input, IReadOnlyList<string> activeAdapters)
    {
        Tensor result = BaseLayer.forward(input);
        foreach (string adapter in activeAdapters)
        {
            using var scope = NewDisposeScope();
            Tensor delta = lora_B[adapter].forward(lora_A[adapter].forward(lora_dropout[adapter].forward(input)));
            Tensor sum = result.add_(delta.mul_(_scaling[adapter]));
            scope.MoveToOuter(sum);
        }
        return result;
    }
}
