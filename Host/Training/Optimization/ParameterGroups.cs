using PeftHost.Engine.Peft;
using PeftHost.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Training.Optimization;

/// <summary>
/// The trainable parameters split as transformers' Trainer splits them for AdamW: weight decay for
/// every parameter except those whose name contains "bias" and those of norm layers (LayerNorm, RMSNorm).
/// </summary>
/// <param name="Decay">(PEFT name, parameter) with weight decay.</param>
/// <param name="NoDecay">(PEFT name, parameter) without.</param>
public sealed record ParameterGroups(IReadOnlyList<(string Name, Parameter Parameter)> Decay, IReadOnlyList<(string Name, Parameter Parameter)> NoDecay)
{
    /// <summary>Every trainable parameter, decayed ones first (the optimiser's order).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> All => [.. Decay, .. NoDecay];

    /// <summary>The groups of a PEFT model's trainable parameters.</summary>
    public static ParameterGroups Of(PeftModel model)
    {
        var norms = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string path, nn.Module module) in model.BaseModel.named_modules())
        {
            if (module is not (LayerNorm or RmsNorm)) continue;
            foreach ((string name, Parameter _) in module.named_parameters())
                norms.Add(AdapterFolder.KeyPrefix + (path.Length == 0 ? name : path + "." + name));
        }
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach ((string name, Parameter p) in model.NamedParameters())
        {
            if (!p.requires_grad) continue;
            if (name.Contains("bias", StringComparison.Ordinal) || norms.Contains(name)) noDecay.Add((name, p));
            else decay.Add((name, p));
        }
        return new ParameterGroups(decay, noDecay);
    }
}
