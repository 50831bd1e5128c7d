using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Runtime;
using PeftHost.Training.Jobs;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost evaluate`: one metric of a model and adapter on a dataset (EvaluationJob).</summary>
internal static class EvaluateCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "The base model folder.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "A PEFT adapter folder (none: the base model)." };
        var data = new Option<string>("--data") { Description = "Rows (.jsonl or .parquet); exact_match and bleu need prompt + completion rows.", Required = true };
        var metric = new Option<string>("--metric") { Description = "loss | perplexity | accuracy | exact_match | bleu.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Generation metrics: the most tokens generated per prompt.", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch-size") { Description = "Rows per forward pass.", DefaultValueFactory = _ => 8 };
        var maxLength = new Option<int>("--max-length") { Description = "Truncation length.", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op CPU threads." };
        var command = new Command("evaluate", "Evaluate a model with an adapter on a dataset: loss, perplexity, accuracy, exact_match or bleu.")
        {
            model, adapter, data, metric, maxNew, batch, maxLength, json, device, threads,
        };
        QuantizationArguments quantization = new QuantizationArguments().AddTo(command);
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(threads) is int n) torch.set_num_threads(Math.Max(1, n));
                EvaluationJob.Result r = EvaluationJob.Run(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(data)!, parse.GetValue(metric)!,
                    parse.GetValue(pluginsOption)!, TorchDevice.Parse(parse.GetValue(device)!), parse.GetValue(maxLength), parse.GetValue(batch), parse.GetValue(maxNew),
                    quantization: quantization.Read(parse));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Metric} {r.Value:G6} ({r.Rows} rows)"));
                if (parse.GetValue(json)) Console.WriteLine(new JsonObject { ["metric"] = r.Metric, ["value"] = r.Value, ["rows"] = r.Rows }.ToJsonString());
                return 0;
            }
            catch (Exception e) when (CliErrors.IsUserError(e) || e is PeftHost.Training.Arguments.TrainingArgumentsException or PeftHost.Tokenizers.TokenizerLoadException)
            {
                return CliErrors.Fail(e.Message);
            }
        });
        return command;
    }
}
