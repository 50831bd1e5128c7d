using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using PeftHost.Abstractions.Config;
using PeftHost.Engine.Export;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using PeftHost.Llama.Runtime;
using PeftHost.Models.Checkpoint;
using PeftHost.Serving;
using PeftHost.Serving.OpenAi;
using PeftHost.Tokenizers;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost serve --model DIR [--adapter [NAME=]DIR]... [options]`: OpenAI's API on Kestrel (Host/Serving's
/// <see cref="OpenAiServer"/> over a <see cref="ServedModel"/>) until Ctrl+C. Parsing and printing only. Exit codes:
/// 2 for a usage or input error (bad options, a non-loopback address without a key, a bad model or adapter),
/// 1 for a failure (the address cannot be bound, a device or plugin fault), 130 when stopped by Ctrl+C or SIGTERM.
/// </summary>
internal static class ServeCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json, weights, tokenizer).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "PEFT adapter folder, [NAME=]DIR, served as model NAME; repeat for several.", AllowMultipleArgumentsPerToken = false };
        var servedName = new Option<string?>("--served-model-name") { Description = "The base model's name in requests (default: the last path component of --model)." };
        var adapterRoot = new Option<string?>("--adapter-root") { Description = "Folder /v1/load_lora_adapter may load adapters from (default: none, loading at run time is off)." };
        var host = new Option<string>("--host") { Description = "Address to bind; anything but loopback needs an API key.", DefaultValueFactory = _ => OpenAiServerOptions.DefaultHost };
        var port = new Option<int>("--port") { Description = "Port (0: any free port).", DefaultValueFactory = _ => OpenAiServerOptions.DefaultPort };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every request but /health." };
        var apiKeyFile = new Option<string?>("--api-key-file") { Description = "As --api-key, the key read from this file (one line)." };
        var maxBatch = new Option<int>("--max-batch") { Description = "Sequences decoded together at most (torch).", DefaultValueFactory = _ => ServedModelOptions.DefaultMaxBatch };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests waiting at most; more are answered 429.", DefaultValueFactory = _ => ServedModelOptions.DefaultMaxQueue };
        var timeout = new Option<double>("--request-timeout") { Description = "Seconds a request may run before it is ended (408).", DefaultValueFactory = _ => OpenAiServerOptions.DefaultRequestTimeoutSeconds };
        var maxBody = new Option<long>("--max-body") { Description = "Largest request body in bytes; larger ones are answered 413.", DefaultValueFactory = _ => OpenAiServerOptions.DefaultMaxBodyBytes };
        var backend = new Option<string>("--backend") { Description = "torch (continuous batching, every PEFT method) | llama (llama.cpp, LoRA, one request at a time).", DefaultValueFactory = _ => "torch" };
        var device = new Option<string>("--device") { Description = "torch: cpu | cuda | cuda:N.", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "torch: f32 | f16 | bf16.", DefaultValueFactory = _ => "f32" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads (torch: intra-op; llama: decode threads; default: all)." };
        var quant = new Option<string>("--quant") { Description = "llama: weight type of the exported base, f32 | f16 | q8_0 | q4_0.", DefaultValueFactory = _ => "q4_0" };
        var noWatch = new Option<bool>("--no-plugin-watch") { Description = "Do not reload a plugin when its folder changes (torch; on by default)." };
        var verbose = new Option<bool>("--verbose") { Description = "Log every request (ASP.NET Core's console log)." };
        var command = new Command("serve", "Serve the model and its adapters with OpenAI's API (as vLLM serves it) on loopback.")
        {
            model, adapter, servedName, adapterRoot, host, port, apiKey, apiKeyFile, maxBatch, maxQueue, timeout, maxBody, backend, device, dtype, threads, quant, noWatch, verbose,
        };
        command.SetAction(async (parse, interrupt) =>
        {
            // Ctrl+C comes through System.CommandLine's token; SIGTERM (a service manager's stop) ends the server the same way.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(interrupt);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
            {
                signal.Cancel = true;
                stop.Cancel();
            });
            CancellationToken cancellation = stop.Token;
            ServedModel? served = null;
            OpenAiServer? server = null;
            try
            {
                string? key = parse.GetValue(apiKey);
                if (parse.GetValue(apiKeyFile) is string file)
                {
                    if (key is not null) return Fail("give --api-key or --api-key-file, not both.", 2);
                    key = File.ReadAllText(file).Trim();
                    if (key.Length == 0) return Fail($"--api-key-file {file} is empty.", 2);
                }
                InferenceBackendKind kind = InferenceBackendKinds.Parse(parse.GetValue(backend)!);
                if (parse.GetValue(threads) is int n)
                {
                    if (n < 1) return Fail("--threads must be at least 1.", 2);
                    if (kind == InferenceBackendKind.Torch) torch.set_num_threads(n);
                }
                var serverOptions = new OpenAiServerOptions
                {
                    Host = parse.GetValue(host)!, Port = parse.GetValue(port), ApiKey = key, AdapterRoot = parse.GetValue(adapterRoot),
                    RequestTimeoutSeconds = parse.GetValue(timeout), MaxBodyBytes = parse.GetValue(maxBody), Verbose = parse.GetValue(verbose),
                };
                // The address rules first: a refused binding fails before the model loads.
                OpenAiServer.CheckBinding(serverOptions);
                var options = new ServedModelOptions
                {
                    ModelFolder = parse.GetValue(model)!,
                    Adapters = AdapterArguments.Parse(parse.GetValue(adapter)),
                    ServedModelName = parse.GetValue(servedName),
                    Backend = kind,
                    PluginsFolder = parse.GetValue(pluginsOption)!,
                    HotReload = !parse.GetValue(noWatch),
                    Device = TorchDevice.Parse(parse.GetValue(device)!),
                    DType = TensorBridge.ParseDType(parse.GetValue(dtype)!),
                    Threads = parse.GetValue(threads),
                    MaxBatch = parse.GetValue(maxBatch),
                    MaxQueue = parse.GetValue(maxQueue),
                    Quant = GgufQuant.Parse(parse.GetValue(quant)!),
                };
                served = ServedModel.Open(options);
                server = await OpenAiServer.StartAsync(served, serverOptions, cancellation);
                Console.Error.WriteLine($"[{served.Scheduler.Decoder.Description}]");
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[serving {string.Join(", ", new[] { served.BaseName }.Concat(served.Adapters))} on {server.Address} (OpenAI API: /v1/models, /v1/completions, /v1/chat/completions); Ctrl+C stops]"));
                await server.WaitForShutdownAsync(cancellation);
                return cancellation.IsCancellationRequested ? 130 : 0;
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                return 130;
            }
            catch (Exception e) when (ExitCode(e) is int code)
            {
                return Fail(e.Message, code);
            }
            finally
            {
                if (server is not null) await server.DisposeAsync();
                served?.Dispose();
            }
        });
        return command;
    }

    // Issue 13's table: 2 for what the user gave (options, files, adapters), 1 for failures of the machine, a device or a plugin.
    private static int? ExitCode(Exception e) => e switch
    {
        PluginFaultException or LlamaCppException => 1,
        ArgumentException or KeyNotFoundException or NotSupportedException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
            or TunerConfigException or TokenizerLoadException or ChatTemplateException or FormatException => 2,
        IOException or UnauthorizedAccessException or InvalidOperationException => 1,
        _ => null,
    };

    private static int Fail(string message, int code)
    {
        Console.Error.WriteLine("error: " + message);
        return code;
    }
}
