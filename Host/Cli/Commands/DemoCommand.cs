using System.CommandLine;
using System.Text.Json.Nodes;
using PeftHost.Cli.Demo;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost demo`: the plugins found, a LoRA adapter applied to a small local model, and a hot
/// reload of the LoRA plugin by the folder watcher while the model stays loaded.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var command = new Command("demo", "Show the plugins, apply LoRA to a small local model, and hot-reload the plugin while it runs.");
        command.SetAction(parse => Run(parse.GetValue(pluginsOption)!));
        return command;
    }

    private static int Run(string installedPlugins)
    {
        // Work on a copy of the plugins folder, so that the demo's reload leaves the install as it was.
        string root = CliPaths.TempFolder("demo");
        try
        {
            string plugins = Path.Combine(root, "plugins");
            foreach (string dir in Directory.GetDirectories(installedPlugins))
                CliPaths.CopyPlugin(dir, Path.Combine(plugins, Path.GetFileName(dir)));

            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins, ReloadDebounce = TimeSpan.FromMilliseconds(300) });
            catalog.Scan();
            AnsiConsole.MarkupLine("[bold]1. Plugins found[/] in " + Markup.Escape(installedPlugins));
            var table = new Table().AddColumns("id", "version", "status", "peft_type");
            foreach (PluginInfo p in catalog.Plugins)
                table.AddRow(Markup.Escape(p.Id), Markup.Escape(p.Version ?? "-"), p.Status == PluginStatus.Loaded ? "[green]loaded[/]" : $"[red]{Markup.Escape(p.Error ?? "")}[/]", Markup.Escape(string.Join(", ", p.Methods)));
            AnsiConsole.Write(table);

            var model = new TinyModel();
            using Tensor input = torch.arange(0, 16, dtype: ScalarType.Int64).reshape(2, 8);
            using Tensor baseLogits = model.forward(input);
            AnsiConsole.MarkupLine($"\n[bold]2. A small local model[/] (TinyModel: vocab 64, hidden 32, 2 blocks; nothing downloaded): logits [[{string.Join(", ", baseLogits.shape)}]]");

            using var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["r"] = 4, ["lora_alpha"] = 8, ["target_modules"] = new JsonArray("q_proj", "v_proj"),
                ["init_lora_weights"] = false, // non-zero B, so that the adapter visibly changes the output
            });
            using Tensor adapted = peft.Forward(input);
            AnsiConsole.MarkupLine($"\n[bold]3. LoRA applied[/] through plugin {Markup.Escape(peft.PluginOf("default"))}: r=4, alpha=8 on q_proj, v_proj");
            foreach ((string name, var p) in model.named_parameters().Where(p => p.name.Contains("layers.0.q_proj")))
                AnsiConsole.MarkupLine($"   {Markup.Escape(name),-40} [[{string.Join(", ", p.shape)}]] {(p.requires_grad ? "trainable" : "")}");
            AnsiConsole.MarkupLine($"   max |adapted - base| = {Diff(adapted, baseLogits):G4}");

            AnsiConsole.MarkupLine("\n[bold]4. Hot reload[/]: dropping a new build of the LoRA plugin into the watched folder...");
            using var watcher = new PluginFolderWatcher(catalog);
            using var reloaded = new ManualResetEventSlim();
            ReloadResult? result = null;
            catalog.Reloaded += (_, r) => { result = r; reloaded.Set(); };
            watcher.Start();
            CliPaths.CopyPlugin(CliPaths.ReloadBenchLora, Path.Combine(plugins, "lora"));
            if (!reloaded.Wait(TimeSpan.FromSeconds(30)) || result is null)
                throw new TimeoutException("The watcher did not reload the plugin within 30 s.");
            if (!result.Succeeded) throw new InvalidOperationException($"Reload failed: {result.Error}");
            AnsiConsole.MarkupLine($"   watcher reloaded lora {Markup.Escape(result.OldVersion ?? "")} -> {Markup.Escape(result.NewVersion ?? "")} in {result.Elapsed.TotalMilliseconds:F1} ms; the model stayed in memory");
            using Tensor after = peft.Forward(input);
            AnsiConsole.MarkupLine($"   now served by {Markup.Escape(peft.PluginOf("default"))}; max |after - before reload| = {Diff(after, adapted):G4} (state handed over)");
            AnsiConsole.MarkupLine($"   old load contexts still alive after GC: {catalog.CountLeakedContexts()}");

            peft.AdaptersEnabled = false;
            using Tensor disabled = peft.Forward(input);
            AnsiConsole.MarkupLine($"\n[bold]5. Adapters disabled[/]: max |output - base| = {Diff(disabled, baseLogits):G4} (exactly the base model)");
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static double Diff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
