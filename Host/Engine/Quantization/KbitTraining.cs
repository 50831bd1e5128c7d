using System.Reflection;
using PeftHost.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Engine.Quantization;

/// <summary>
/// PEFT 0.13.2's <c>prepare_model_for_kbit_training</c> (peft/utils/other.py), for a base with quantized layers
/// before adapters are added: every parameter is frozen, and every float16 / bfloat16 parameter that is not a
/// quantized weight (norms, embeddings, the head, the quantized layers' biases) becomes float32; the quantized
/// weights are buffers and keep their storage.
/// </summary>
/// <remarks>
/// As PEFT, gradient checkpointing is turned on by default (<c>use_gradient_checkpointing=True</c>) on a model that
/// can recompute its layers; the training job passes its settings' <c>gradient_checkpointing</c> instead, which the
/// Trainer applies anyway. PEFT's other step for its reentrant checkpointing, making the input embedding's output
/// require grad (transformers' <c>enable_input_require_grads</c>), is not needed here: our checkpointed layers are
/// recomputed in backward from their saved inputs, and the adapters' own parameters make autograd record the path.
/// </remarks>
public static class KbitTraining
{
    /// <summary>Prepares <paramref name="model"/>; returns the parameters cast to float32 (a tied weight under its source's name).</summary>
    /// <param name="model">The base, quantized layers in place, before adapters are added.</param>
    /// <param name="useGradientCheckpointing">Turn on gradient checkpointing when the model can recompute its layers (PEFT's default: true).</param>
    /// <exception cref="NotSupportedException">A module shares a half-precision parameter but offers no way to share the float32 copy.</exception>
    public static IReadOnlyList<string> PrepareForKbitTraining(nn.Module model, bool useGradientCheckpointing = true)
    {
        foreach (Parameter p in model.parameters()) p.requires_grad = false;
        IReadOnlyList<string> cast = CastHalfParameters(model);
        if (useGradientCheckpointing && model is IGradientCheckpointing checkpointing) checkpointing.GradientCheckpointing = true;
        return cast;
    }

    // Each module that owns a half-precision parameter converts it (module.to(float32): quantized layers convert
    // only their bias). A tied weight (ITiedWeights) is converted under its source name and shared again.
    private static IReadOnlyList<string> CastHalfParameters(nn.Module model)
    {
        IReadOnlyDictionary<string, string> tied = (model as ITiedWeights)?.TiedParameters ?? new Dictionary<string, string>();
        var modules = model.named_modules().ToDictionary(m => m.name, m => m.module);
        var cast = new List<string>();
        foreach ((string path, nn.Module module) in modules)
        {
            var own = module.named_parameters(recurse: false)
                .Where(p => p.parameter.dtype is ScalarType.Float16 or ScalarType.BFloat16)
                .Select(p => Join(path, p.name)).Where(n => !tied.ContainsKey(n)).ToList();
            if (own.Count == 0) continue;
            cast.AddRange(own);
            module.to(ScalarType.Float32);
        }
        foreach ((string alias, string source) in tied)
        {
            (string aliasModule, string aliasName) = Split(alias);
            (string sourceModule, string sourceName) = Split(source);
            Parameter shared = modules[sourceModule].named_parameters(recurse: false).First(p => p.name == sourceName).parameter;
            Share(modules[aliasModule], aliasName, shared);
        }
        return cast;
    }

    private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

    private static (string Module, string Name) Split(string parameter)
    {
        int dot = parameter.LastIndexOf('.');
        return dot < 0 ? ("", parameter) : (parameter[..dot], parameter[(dot + 1)..]);
    }

    private static void Share(nn.Module module, string name, Parameter shared)
    {
        PropertyInfo? property = module.GetType().GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
        if (property is null || !property.CanWrite || !property.PropertyType.IsAssignableFrom(typeof(Parameter)))
            throw new NotSupportedException($"{module.GetType().Name} shares its parameter '{name}' with another module but has no settable '{name}' property to share the float32 copy.");
        property.SetValue(module, shared);
    }
}
