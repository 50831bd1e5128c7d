using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Quantization;
using PeftHost.Formats.BitsAndBytes;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Tokenizers;
using PeftHost.Training.Arguments;
using PeftHost.Training.Checkpoints;
using PeftHost.Training.Data;
using PeftHost.Training.Loop;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Training.Jobs;

/// <summary>
/// A whole fine-tuning run as `pefthost train` does it: bind the settings, load the base model and its
/// tokenizer, add or load the adapter through its plugin, read and check every data row, train, and
/// leave the final adapter, trainer_state.json, train_log.jsonl and training_curves.png in output_dir.
/// </summary>
public static class FineTuningJob
{
    /// <summary>Runs it.</summary>
    public static TrainResult Run(FineTuningRequest request, IProgress<TrainingProgress>? progress = null, CancellationToken cancel = default)
    {
        (JsonObject arguments, BitsAndBytesConfig? quantization) = SplitQuantization(request);
        TrainingArguments args = TrainingArgumentsReader.Parse(arguments, request.ArgumentsSource);
        if ((request.AdapterConfigFile is null) == (request.InitAdapterFolder is null))
            throw new ArgumentException("Give exactly one of --adapter-config FILE.json (a fresh adapter) and --init-adapter DIR (an existing one).");
        string? resume = request.Resume switch
        {
            null => null,
            "" => CheckpointFolder.Latest(args.OutputDir),
            string path => path,
        };

        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = request.PluginsFolder, HotReload = false });
        catalog.Scan();
        (ModelConfig config, nn.Module model) = ModelFactory.Load(request.ModelFolder, ScalarType.Float32, request.Device, quantization);
        // A quantized base (given or stored) is prepared as PEFT's prepare_model_for_kbit_training before the adapter is
        // added; checkpointing follows the run's gradient_checkpointing, as the Trainer sets it anyway.
        if (model.modules().Any(m => m is QuantizedLinear)) KbitTraining.PrepareForKbitTraining(model, useGradientCheckpointing: args.GradientCheckpointing);
        // The model folder's tokenizer, loaded when the data or a method asks for it (prompt tuning's TEXT initialisation).
        ITextTokenizer? tokenizer = null;
        ITextTokenizer Tokenizer() => tokenizer ??= TokenizerLoader.FromDirectory(request.ModelFolder);
        using (model)
        using (var peft = new PeftModel(model, catalog) { Tokenize = text => Tokenizer().Encode(text) })
        {
            manual_seed(args.Seed); // a fresh adapter initialises from the run's seed, as with transformers' set_seed
            JsonObject adapterConfig = AddAdapter(peft, request);
            TaskKind task = model is ISequenceClassifier ? TaskKind.SequenceClassification : TaskKind.CausalLM;
            ExampleEncoder encoder = Encoder(config, task, Tokenizer, args);

            IReadOnlyList<DatasetRow> rows = DatasetFile.Read(request.DataFile);
            IReadOnlyList<DatasetRow>? evalRows = request.EvalDataFile is null ? null : DatasetFile.Read(request.EvalDataFile);
            if (evalRows is null && args.EvalSplit > 0) (rows, evalRows) = TrainingDataset.Split(rows, args.EvalSplit, args.Seed);
            TrainingDataset train = TrainingDataset.FromRows(request.DataFile, rows, encoder, args.Packing);
            TrainingDataset? eval = evalRows is null ? null
                : TrainingDataset.FromRows(request.EvalDataFile ?? request.DataFile + " (eval_split)", evalRows, encoder, args.Packing);

            var identity = new JsonObject
            {
                ["data_sha256"] = RunSettings.FileHash(request.DataFile),
                ["eval_data_sha256"] = request.EvalDataFile is null ? null : RunSettings.FileHash(request.EvalDataFile),
                ["adapter_config"] = adapterConfig,
                ["quantization_config"] = quantization?.ToJson(),
            };
            var trainer = new Trainer(peft, args, train, eval, new TrainerOptions
            {
                Task = task, PadTokenId = PadId(config, task == TaskKind.CausalLM ? Tokenizer : null), BaseModelNameOrPath = Path.GetFullPath(request.ModelFolder),
                RunIdentity = identity, Device = request.Device,
            }) { Progress = progress };
            return trainer.Train(resume, cancel);
        }
    }

    // The training config may carry transformers' quantization_config beside the TrainingArguments fields;
    // the request's own quantization (the CLI's flags) takes its place.
    private static (JsonObject Arguments, BitsAndBytesConfig? Quantization) SplitQuantization(FineTuningRequest request)
    {
        if (!request.Arguments.ContainsKey(QuantizationField)) return (request.Arguments, request.Quantization);
        var arguments = (JsonObject)request.Arguments.DeepClone();
        JsonNode? node = arguments[QuantizationField];
        arguments.Remove(QuantizationField);
        if (request.Quantization is not null || node is null) return (arguments, request.Quantization);
        if (node is not JsonObject json)
            throw new TrainingArgumentsException($"{request.ArgumentsSource}: field '{QuantizationField}' must be an object (transformers' BitsAndBytesConfig fields), got {node.ToJsonString()}.");
        try
        {
            return (arguments, BitsAndBytesConfig.Parse(json, request.ArgumentsSource));
        }
        catch (InvalidDataException e)
        {
            throw new TrainingArgumentsException(e.Message);
        }
    }

    private const string QuantizationField = "quantization_config";

    /// <summary>The encoder of a model's rows (labels from config.json, the tokenizer loaded when a row needs it).</summary>
    public static ExampleEncoder Encoder(ModelConfig config, TaskKind task, Func<ITextTokenizer> tokenizer, TrainingArguments args)
    {
        int numLabels = config is BertConfig b ? b.NumLabels : 0;
        var label2Id = new Dictionary<string, int>(StringComparer.Ordinal);
        if (config.Raw["label2id"] is JsonObject map)
            foreach ((string name, JsonNode? id) in map)
                if (id is JsonValue v && v.TryGetValue(out int i)) label2Id[name] = i;
        return new ExampleEncoder(task, tokenizer, config.VocabSize, args.MaxLength, args.CompletionOnlyLoss, args.AssistantOnlyLoss, numLabels, label2Id);
    }

    /// <summary>The padding id: pad_token_id of config.json, else the tokenizer's pad or eos, else 0 (padding is never attended).</summary>
    public static int PadId(ModelConfig config, Func<ITextTokenizer>? tokenizer)
    {
        if (config.Raw["pad_token_id"] is JsonValue v && v.TryGetValue(out int pad)) return pad;
        if (tokenizer is null) return 0;
        try
        {
            ITextTokenizer t = tokenizer();
            return t.PadTokenId ?? (t.EosTokenIds.Count > 0 ? t.EosTokenIds[0] : 0);
        }
        catch (TokenizerLoadException)
        {
            return 0; // pre-tokenised data needs no tokenizer; the id only fills masked positions
        }
    }

    private static JsonObject AddAdapter(PeftModel peft, FineTuningRequest request)
    {
        if (request.InitAdapterFolder is { } folder)
        {
            peft.LoadAdapter(folder, "default", isTrainable: true);
            return JsonNode.Parse(File.ReadAllText(Path.Combine(folder, AdapterFolder.ConfigFile))) as JsonObject ?? [];
        }
        string path = request.AdapterConfigFile!;
        if (!File.Exists(path)) throw new FileNotFoundException($"--adapter-config {path} not found.", path);
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
        peft.AddAdapter("default", config);
        return config;
    }
}
