using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tests.Support;
using PeftHost.Tokenizers;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Training;

/// <summary>
/// One run of the demo's rule task (Host/Cli/Demo, <see cref="UppercaseTask"/>) in a scratch folder: a tiny
/// random-init preset, an adapter trained with the demo's settings by <see cref="FineTuningJob"/>, and its
/// held-out exact match once reloaded from disk. One thread while it lives, so that runs are repeatable.
/// </summary>
internal sealed class RuleTaskRun : IDisposable
{
    private readonly ScratchFolder _dir = new();
    private readonly int _threads = get_num_threads();

    /// <summary>Writes the <paramref name="arch"/> tiny preset (seed 0) and loads its tokenizer.</summary>
    public RuleTaskRun(string arch = "llama")
    {
        ModelDir = Path.Combine(_dir.Path, arch);
        ModelPresets.Write(arch, "tiny", ModelDir, seed: 0);
        Tokenizer = TokenizerLoader.FromDirectory(ModelDir);
        Catalog = TrainingCase.Catalog();
        set_num_threads(1);
    }

    /// <summary>The scratch folder (for files a test adds).</summary>
    public string Folder => _dir.Path;

    /// <summary>The preset model folder.</summary>
    public string ModelDir { get; }

    /// <summary>Where <see cref="Train"/> writes the adapter.</summary>
    public string Output => Path.Combine(_dir.Path, "out");

    /// <summary>The held-out rows.</summary>
    public static string HeldOut => Path.Combine(Demo, UppercaseTask.HeldOutFile);

    /// <summary>The model's tokenizer.</summary>
    public ITextTokenizer Tokenizer { get; }

    /// <summary>The installed plugins.</summary>
    public PluginCatalog Catalog { get; }

    private static string Demo => Path.Combine(Repo.Root, "Host", "Cli", "Demo");

    /// <summary>Trains <paramref name="adapterConfig"/> (default: the demo's LoRA) on the training rows into <see cref="Output"/>.</summary>
    /// <param name="adapterConfig">The adapter config.</param>
    /// <param name="edit">Changes to the demo's settings (e.g. a quantization_config).</param>
    public TrainResult Train(JsonObject? adapterConfig = null, Action<JsonObject>? edit = null)
    {
        string config = Path.Combine(_dir.Path, "adapter.json");
        File.WriteAllText(config, (adapterConfig ?? UppercaseTask.AdapterConfig()).ToJsonString());
        JsonObject settings = UppercaseTask.Settings(Output);
        edit?.Invoke(settings);
        return FineTuningJob.Run(new FineTuningRequest
        {
            ModelFolder = ModelDir, DataFile = Path.Combine(Demo, UppercaseTask.TrainFile), AdapterConfigFile = config,
            Arguments = settings, PluginsFolder = PluginDirs.Installed,
        }, cancel: TestContext.Current.CancellationToken);
    }

    /// <summary>Held-out exact match of <paramref name="baseModel"/> (default: the preset in float32) with the adapter of <see cref="Output"/> reloaded; null adapter: the base alone.</summary>
    public (double ExactMatch, IReadOnlyList<UppercaseTask.Answer> Answers) Score(nn.Module? baseModel = null, string? adapter = "")
    {
        using nn.Module model = baseModel ?? ModelFactory.Load(ModelDir).Model;
        using PeftModel peft = adapter is null ? new PeftModel(model, Catalog) : PeftModel.FromPretrained(model, adapter.Length == 0 ? Output : adapter, Catalog);
        return UppercaseTask.Score(peft, Tokenizer, HeldOut);
    }

    /// <summary>A few wrong answers, for an assertion's message.</summary>
    public static string Wrong(IEnumerable<UppercaseTask.Answer> answers) =>
        string.Join(", ", answers.Where(a => !a.Correct).Take(5).Select(a => $"{a.Prompt}{a.Output} (expected {a.Expected})"));

    public void Dispose()
    {
        set_num_threads(_threads);
        Catalog.Dispose();
        _dir.Dispose();
    }
}
