using System.Text.Json.Nodes;
using PeftHost.Formats.Safetensors;
using PeftHost.Models.Checkpoint;
using PeftHost.Training.Arguments;
using PeftHost.Training.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PeftHost.Training.Optimization;

/// <summary>
/// torch.optim.AdamW (TorchSharp's, the same update) over the trainable parameters in transformers'
/// two groups, and its state by parameter name: moments in safetensors, step counts and
/// hyper-parameters in JSON (no pickle), so a checkpoint restores it exactly.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    /// <summary>The tensors file of a checkpoint's optimiser state.</summary>
    public const string TensorsFile = "optimizer.safetensors";

    /// <summary>The JSON file of a checkpoint's optimiser state.</summary>
    public const string StateFile = "optimizer.json";

    private readonly AdamW _adamw;
    private readonly ParameterGroups _groups;

    /// <summary>AdamW over <paramref name="groups"/> with the run's betas, epsilon and weight decay.</summary>
    public AdamWOptimizer(ParameterGroups groups, TrainingArguments args)
    {
        _groups = groups;
        Arguments = args;
        _adamw = optim.AdamW(
            [
                new AdamW.ParamGroup(groups.Decay.Select(p => p.Parameter), args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay),
                new AdamW.ParamGroup(groups.NoDecay.Select(p => p.Parameter), args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, 0.0),
            ],
            args.LearningRate, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay);
    }

    /// <summary>The settings it was made with.</summary>
    public TrainingArguments Arguments { get; }

    /// <summary>The parameters it updates.</summary>
    public ParameterGroups Groups => _groups;

    /// <summary>Sets every group's learning rate (the scheduler's output).</summary>
    public void SetLearningRate(double rate)
    {
        foreach (var group in _adamw.ParamGroups) group.LearningRate = rate;
    }

    /// <summary>One AdamW update from the accumulated gradients.</summary>
    public void Step() => _adamw.step();

    /// <summary>Zeroes the gradients (torch 1.13's <c>model.zero_grad()</c>, which the reference Trainer calls).</summary>
    /// <remarks>
    /// TorchSharp's own zero_grad drops the extra tensor handle that <c>zero_()</c> returns, one per
    /// parameter per step, which live-tensor counts show as growth: here every handle is disposed.
    /// </remarks>
    public void ZeroGrad()
    {
        foreach ((_, Parameter p) in _groups.All)
        {
            using Tensor? grad = p.grad;
            if (grad is null) continue;
            using Tensor zeroed = grad.zero_();
        }
    }

    /// <summary>Writes the state into a checkpoint folder.</summary>
    public void Save(string folder)
    {
        var tensors = new List<SafetensorsWriteTensor>();
        var steps = new JsonObject();
        foreach (((string name, Parameter _), AdamW.State state) in _groups.All.Zip(States()))
        {
            steps[name] = state.step;
            tensors.Add(TensorBridge.ToWrite(name + ".exp_avg", state.exp_avg));
            tensors.Add(TensorBridge.ToWrite(name + ".exp_avg_sq", state.exp_avg_sq));
        }
        SafetensorsWriter.Write(Path.Combine(folder, TensorsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var json = new JsonObject
        {
            ["optim"] = "adamw_torch",
            ["betas"] = new JsonArray(Arguments.AdamBeta1, Arguments.AdamBeta2), ["eps"] = Arguments.AdamEpsilon,
            ["param_groups"] = new JsonArray(
                new JsonObject { ["weight_decay"] = Arguments.WeightDecay, ["params"] = new JsonArray([.. _groups.Decay.Select(p => (JsonNode)p.Name)]) },
                new JsonObject { ["weight_decay"] = 0.0, ["params"] = new JsonArray([.. _groups.NoDecay.Select(p => (JsonNode)p.Name)]) }),
            ["step"] = steps,
        };
        PeftHost.Formats.AtomicFile.WriteAllText(Path.Combine(folder, StateFile), json.ToJsonString(CheckpointJson.Options));
    }

    /// <summary>Restores the state a checkpoint holds.</summary>
    /// <exception cref="InvalidDataException">The checkpoint's parameters are not the model's.</exception>
    public void Load(string folder)
    {
        string jsonPath = Path.Combine(folder, StateFile);
        JsonObject json = CheckpointJson.Read(jsonPath);
        var saved = (json["step"] as JsonObject)?.Select(p => p.Key).ToList() ?? [];
        var names = _groups.All.Select(p => p.Name).ToList();
        if (!saved.SequenceEqual(names))
        {
            var missing = names.Except(saved).Take(3).ToList();
            var extra = saved.Except(names).Take(3).ToList();
            throw new InvalidDataException($"{jsonPath}: the optimiser state is for other parameters than the model's trainable ones" +
                $"{(missing.Count > 0 ? $"; not in the checkpoint: {string.Join(", ", missing)}" : "")}{(extra.Count > 0 ? $"; not in the model: {string.Join(", ", extra)}" : "")}.");
        }
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(folder, TensorsFile));
        using (no_grad())
        {
            foreach (((string name, Parameter p), AdamW.State state) in _groups.All.Zip(States()))
            {
                state.step = json["step"]![name]!.GetValue<long>();
                using Tensor m = TensorBridge.Read(file, name + ".exp_avg");
                using Tensor v = TensorBridge.Read(file, name + ".exp_avg_sq");
                if (!m.shape.SequenceEqual(p.shape) || !v.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{folder}: optimiser moments of '{name}' have shape [{string.Join(", ", m.shape)}], the parameter [{string.Join(", ", p.shape)}].");
                state.exp_avg.copy_(m);
                state.exp_avg_sq.copy_(v);
            }
        }
    }

    private IEnumerable<AdamW.State> States() => _adamw.state_dict().State.Cast<AdamW.State>();

    /// <inheritdoc />
    public void Dispose() => _adamw.Dispose();
}
