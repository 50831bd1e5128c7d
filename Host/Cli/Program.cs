using System.CommandLine;
using PeftHost.Cli;
using PeftHost.Cli.Commands;
using PeftHost.Engine.Runtime;

// Before libtorch loads: generation and serving (many tiny ops) wait passively, batch work keeps OpenMP's default.
TorchThreading.ConfigureBeforeTorchLoads(passiveWaits: args.Length > 0 && (args[0] is "generate" or "serve" || (args[0] == "bench" && args.Length > 1 && args[1] is "generate" or "serve")));
TorchCpuMath.ConfigureBeforeTorchLoads();

var plugins = new Option<string>("--plugins")
{
    Description = "The plugins folder (default: plugins/ beside pefthost).",
    DefaultValueFactory = _ => CliPaths.DefaultPlugins,
    Recursive = true,
};
var verbose = new Option<bool>("--verbose")
{
    Description = "On an error, also print the exception's details and stack trace.",
    Recursive = true,
};
var root = new RootCommand("pefthost: parameter-efficient fine-tuning with hot-reloadable tuner plugins.") { plugins, verbose };
root.Subcommands.Add(DoctorCommand.Create(plugins));
root.Subcommands.Add(PluginsCommand.Create(plugins));
root.Subcommands.Add(DemoCommand.Create(plugins));
root.Subcommands.Add(AdapterCommand.Create());
root.Subcommands.Add(LogitsCommand.Create(plugins));
root.Subcommands.Add(GenerateCommand.Create(plugins));
root.Subcommands.Add(MergeCommand.Create(plugins));
root.Subcommands.Add(MakeModelCommand.Create());
root.Subcommands.Add(ExportCommand.Create(plugins));
root.Subcommands.Add(TrainCommand.Create(plugins));
root.Subcommands.Add(EvaluateCommand.Create(plugins));
root.Subcommands.Add(ServeCommand.Create(plugins));
var bench = new Command("bench", "Benchmarks that print figures.");
bench.Subcommands.Add(BenchReloadCommand.Create());
bench.Subcommands.Add(BenchModelsCommand.Create());
bench.Subcommands.Add(BenchVulkanCommand.Create());
bench.Subcommands.Add(BenchLoraCommand.Create(plugins));
bench.Subcommands.Add(BenchGenerateCommand.Create(plugins));
bench.Subcommands.Add(BenchChatTemplateCommand.Create());
bench.Subcommands.Add(BenchQloraCommand.Create(plugins));
bench.Subcommands.Add(BenchTrainCommand.Create(plugins));
bench.Subcommands.Add(BenchServeCommand.Create(plugins));
bench.Subcommands.Add(BenchMemoryCommand.Create());
root.Subcommands.Add(bench);
return CliInvocation.Run(root.Parse(args), verbose);
