using System.CommandLine;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost demo`: the plugins found; a tiny Llama made locally (nothing downloaded); a LoRA adapter
/// applied, saved in PEFT's format and loaded back; a hot reload of the LoRA plugin by the folder
/// watcher while the model stays loaded; merge; disable.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var command = new Command("demo", "Show the plugins, apply LoRA to a small local Llama, save/load it, hot-reload the plugin while it runs, merge.");
        command.SetAction(parse => Run(parse.GetValue(pluginsOption)!));
        return command;
    }

    private static int Run(string installedPlugins)
    {
        // Piped output (CI logs, tests) gets full lines rather than Spectre's 80-column wrapping.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        // Work on a copy of the plugins folder, so that the demo's reload leaves the install as it was.
        string root = CliPaths.TempFolder("demo");
        try
        {
            string plugins = Path.Combine(root, "plugins");
            foreach (string dir in Directory.GetDirectories(installedPlugins))
                CliPaths.CopyPlugin(dir, Path.Combine(plugins, Path.GetFileName(dir)));

            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins, ReloadDebounce = TimeSpan.FromMilliseconds(300) });
            catalog.Scan();
            Step(1, "Plugins found in " + installedPlugins);
            var table = new Table().AddColumns("id", "version", "status", "peft_type");
            foreach (PluginInfo p in catalog.Plugins)
                table.AddRow(Markup.Escape(p.Id), Markup.Escape(p.Version ?? "-"), p.Status == PluginStatus.Loaded ? "[green]loaded[/]" : $"[red]{Markup.Escape(p.Error ?? "")}[/]", Markup.Escape(string.Join(", ", p.Methods)));
            AnsiConsole.Write(table);

            string modelDir = Path.Combine(root, "tiny-llama");
            ModelPresets.Write("llama", "tiny", modelDir, seed: 0);
            (var config, nn.Module model) = ModelFactory.Load(modelDir);
            var lm = (ICausalLM)model;
            using Tensor ids = torch.tensor(new long[] { 1, 17, 42, 99, 7, 64, 200, 3, 1, 88, 12, 150, 31, 5, 77, 240 }, [2, 8]);
            using Tensor baseLogits = Logits(lm, ids);
            Step(2, $"A tiny Llama made locally in {modelDir} (config.json + model.safetensors; nothing downloaded): logits [{string.Join(", ", baseLogits.shape)}]");

            var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 8, ["lora_alpha"] = 16,
                ["target_modules"] = new JsonArray("q_proj", "v_proj"),
                ["init_lora_weights"] = false, // non-zero B, so that the adapter visibly changes the output (as after training)
            });
            using Tensor adapted = peft.Run(() => Logits(lm, ids));
            Step(3, $"LoRA r=8, alpha=16 on q_proj, v_proj through plugin {peft.PluginOf("default")}");
            AnsiConsole.WriteLine("   " + peft.TrainableParametersLine());
            foreach ((string name, var p) in peft.NamedParameters().Where(p => p.Name.Contains("layers.0.self_attn.q_proj")))
                AnsiConsole.MarkupLine($"   {Markup.Escape(name)} [[{string.Join(", ", p.shape)}]] {(p.requires_grad ? "trainable" : "frozen")}");
            AnsiConsole.MarkupLine($"   max |adapted - base| = {Diff(adapted, baseLogits):G4}");

            string adapterDir = Path.Combine(root, "adapter");
            peft.SavePretrained(adapterDir);
            (_, nn.Module fresh) = ModelFactory.Load(modelDir);
            using (PeftModel loaded = PeftModel.FromPretrained(fresh, adapterDir, catalog))
            using (Tensor reloaded = loaded.Run(() => Logits((ICausalLM)fresh, ids)))
            {
                Step(4, $"Saved as PEFT does ({string.Join(", ", Directory.GetFiles(adapterDir).Select(Path.GetFileName))}) and loaded into a fresh model");
                AnsiConsole.MarkupLine($"   max |loaded - adapted| = {Diff(reloaded, adapted):G4}");
            }

            Step(5, "Hot reload: dropping a new build of the LoRA plugin into the watched folder...");
            using var watcher = new PluginFolderWatcher(catalog);
            using var reloadedEvent = new ManualResetEventSlim();
            ReloadResult? result = null;
            catalog.Reloaded += (_, r) => { result = r; reloadedEvent.Set(); };
            watcher.Start();
            CliPaths.CopyPlugin(CliPaths.ReloadBenchLora, Path.Combine(plugins, "lora"));
            if (!reloadedEvent.Wait(TimeSpan.FromSeconds(30)) || result is null)
                throw new TimeoutException("The watcher did not reload the plugin within 30 s.");
            if (!result.Succeeded) throw new InvalidOperationException($"Reload failed: {result.Error}");
            AnsiConsole.MarkupLine($"   watcher reloaded lora {Markup.Escape(result.OldVersion ?? "")} -> {Markup.Escape(result.NewVersion ?? "")} in {result.Elapsed.TotalMilliseconds:F1} ms; the model stayed in memory");
            using Tensor after = peft.Run(() => Logits(lm, ids));
            AnsiConsole.MarkupLine($"   now served by {Markup.Escape(peft.PluginOf("default"))}; max |after - before reload| = {Diff(after, adapted):G4} (state handed over)");
            AnsiConsole.MarkupLine($"   old load contexts still alive after GC: {catalog.CountLeakedContexts()}");

            peft.AdaptersEnabled = false;
            using Tensor disabled = peft.Run(() => Logits(lm, ids));
            Step(6, $"Adapters disabled: max |output - base| = {Diff(disabled, baseLogits):G4} (exactly the base model)");
            peft.AdaptersEnabled = true;

            nn.Module merged = peft.MergeAndUnload();
            using Tensor mergedLogits = Logits((ICausalLM)merged, ids);
            Step(7, $"merge_and_unload: a plain Llama again ({merged.named_modules().Count(m => m.name.Contains("lora_"))} LoRA modules left); max |merged - adapted| = {Diff(mergedLogits, adapted):G4}");
            peft.Dispose();
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static Tensor Logits(ICausalLM lm, Tensor ids)
    {
        using (no_grad()) return lm.Forward(ids);
    }

    private static void Step(int n, string text) => AnsiConsole.MarkupLine($"\n[bold]{n}.[/] {Markup.Escape(text)}");

    private static double Diff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
