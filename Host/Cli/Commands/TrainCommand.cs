using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using PeftHost.Engine.Runtime;
using PeftHost.Training.Arguments;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost train`: fine-tunes an adapter (FineTuningJob). Ctrl+C (or SIGTERM) stops after the current
/// optimiser step, saves a checkpoint and exits with 130; the same command with --resume continues.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "The base model folder (Hugging Face layout).", Required = true };
        var data = new Option<string>("--data") { Description = "Training rows (.jsonl or .parquet).", Required = true };
        var evalData = new Option<string?>("--eval-data") { Description = "Evaluation rows (.jsonl or .parquet)." };
        var output = new Option<string>("--out") { Description = "The output folder (overrides output_dir).", Required = true };
        var adapterConfig = new Option<string?>("--adapter-config") { Description = "A fresh adapter from this adapter_config.json." };
        var initAdapter = new Option<string?>("--init-adapter") { Description = "Start from this PEFT adapter folder (trainable)." };
        var config = new Option<string?>("--config") { Description = "Training settings (.json, .yaml): Hugging Face TrainingArguments names." };
        var set = new Option<string[]>("--set") { Description = "field=value (the value read as JSON when it parses); repeatable.", AllowMultipleArgumentsPerToken = false, DefaultValueFactory = _ => [] };
        var resume = new Option<string?>("--resume") { Description = "Resume from a checkpoint folder (the latest under --out when no folder is given).", Arity = ArgumentArity.ZeroOrOne };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op CPU threads (default: libtorch's choice)." };
        var command = new Command("train", "Fine-tune an adapter (LoRA, IA3, prompt tuning, ...) with Hugging Face Trainer settings; resumable.")
        {
            model, data, evalData, output, adapterConfig, initAdapter, config, set, resume, device, threads,
        };
        QuantizationArguments quantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(threads) is int n)
                {
                    if (n < 1) return CliErrors.Fail("--threads must be at least 1.");
                    torch.set_num_threads(n);
                }
                string? configFile = parse.GetValue(config);
                JsonObject settings = configFile is null ? [] : TrainingArgumentsReader.ReadFile(configFile);
                string[] overrides = parse.GetValue(set) ?? [];
                settings = TrainingArgumentsReader.ApplyOverrides(settings, overrides);
                settings["output_dir"] = parse.GetValue(output);
                string source = (configFile ?? "the training settings") + (overrides.Length > 0 ? " with --set" : "");
                // --resume alone means the latest checkpoint ("").
                string? resumeFrom = parse.GetResult(resume) is null ? null : parse.GetValue(resume) ?? "";
                var request = new FineTuningRequest
                {
                    ModelFolder = parse.GetValue(model)!, DataFile = parse.GetValue(data)!, EvalDataFile = parse.GetValue(evalData),
                    AdapterConfigFile = parse.GetValue(adapterConfig), InitAdapterFolder = parse.GetValue(initAdapter),
                    Arguments = settings, ArgumentsSource = source, Resume = resumeFrom, Device = TorchDevice.Parse(parse.GetValue(device)!),
                    PluginsFolder = parse.GetValue(pluginsOption)!, Quantization = quantization.Read(parse),
                };
                using var cts = new CancellationTokenSource();
                ConsoleCancelEventHandler onCtrlC = (_, e) =>
                {
                    e.Cancel = true; // let the run save a checkpoint, then exit with 130
                    cts.Cancel();
                };
                Console.CancelKeyPress += onCtrlC;
                using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
                {
                    ctx.Cancel = true;
                    cts.Cancel();
                });
                try
                {
                    TrainResult result = new TrainProgressView().Show(view => FineTuningJob.Run(request, view, cts.Token));
                    if (result.Status == TrainStatus.Cancelled)
                    {
                        Console.Error.WriteLine($"interrupted at step {result.GlobalStep}: checkpoint {result.LastCheckpoint}; run the same command with --resume to continue.");
                        return 130;
                    }
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done: {result.GlobalStep} steps, train_loss {result.TrainLoss:F4}, {result.Runtime.TotalSeconds:F1} s; adapter, trainer_state.json, train_log.jsonl and training_curves.png in {result.OutputDir}"));
                    return 0;
                }
                finally
                {
                    Console.CancelKeyPress -= onCtrlC;
                }
            }
            catch (Exception e) when (CliErrors.IsUserError(e) || e is TrainingArgumentsException or PeftHost.Tokenizers.TokenizerLoadException or PeftHost.Tokenizers.ChatTemplateException)
            {
                return CliErrors.Fail(e.Message);
            }
        });
        return command;
    }
}
