using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Models;
using PeftHost.Tokenizers;
using PeftHost.Training.Jobs;
using PeftHost.Training.Loop;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Cli.Commands;

/// <summary>
/// `pefthost demo`: the plugins found; a tiny Llama made locally (nothing downloaded); fine-tuning a
/// LoRA adapter on a rule task shipped beside pefthost (upper-casing words), with the answers on
/// held-out words before and after, the adapter saved, reloaded into a fresh model and merged; then a
/// LoRA adapter applied, saved and loaded back, a hot reload of the LoRA plugin by the folder watcher
/// while the model stays loaded, disable and merge.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var command = new Command("demo", "Show the plugins, fine-tune LoRA on a rule task with a small local Llama, save/reload/merge it, hot-reload the plugin while it runs.");
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

            FineTune(catalog, modelDir, root);

            var peft = new PeftModel(model, catalog);
            peft.AddAdapter("default", new JsonObject
            {
                ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = 8, ["lora_alpha"] = 16,
                ["target_modules"] = new JsonArray("q_proj", "v_proj"),
                ["init_lora_weights"] = false, // non-zero B, so that the adapter visibly changes the output (as after training)
            });
            using Tensor adapted = peft.Run(() => Logits(lm, ids));
            Step(6, $"LoRA r=8, alpha=16 on q_proj, v_proj through plugin {peft.PluginOf("default")}");
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
                Step(7, $"Saved as PEFT does ({string.Join(", ", Directory.GetFiles(adapterDir).Select(Path.GetFileName))}) and loaded into a fresh model");
                AnsiConsole.MarkupLine($"   max |loaded - adapted| = {Diff(reloaded, adapted):G4}");
            }

            Step(8, "Hot reload: dropping a new build of the LoRA plugin into the watched folder...");
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
            Step(9, $"Adapters disabled: max |output - base| = {Diff(disabled, baseLogits):G4} (exactly the base model)");
            peft.AdaptersEnabled = true;

            nn.Module merged = peft.MergeAndUnload();
            using Tensor mergedLogits = Logits((ICausalLM)merged, ids);
            Step(10, $"merge_and_unload: a plain Llama again ({merged.named_modules().Count(m => m.name.Contains("lora_"))} LoRA modules left); max |merged - adapted| = {Diff(mergedLogits, adapted):G4}");
            peft.Dispose();
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    // Steps 3-5: the fine-tuning story on the shipped rule task.
    private static void FineTune(PluginCatalog catalog, string modelDir, string root)
    {
        string demo = Path.Combine(AppContext.BaseDirectory, "Demo");
        string train = Path.Combine(demo, UppercaseTask.TrainFile), heldOut = Path.Combine(demo, UppercaseTask.HeldOutFile);
        ITextTokenizer tokenizer = TokenizerLoader.FromDirectory(modelDir);
        // The tiny model's ops are too small to gain from several threads (they would only wait on each other).
        torch.set_num_threads(1);
        (double before, IReadOnlyList<UppercaseTask.Answer> baseAnswers) = Score(catalog, modelDir, null, tokenizer, heldOut);
        Step(3, $"Fine-tuning: the rule task in {demo} upper-cases 4-letter words ({File.ReadLines(train).Count()} training rows, {baseAnswers.Count} held-out words never trained on)");
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"   before training, the random base model gets {before:P0} of the held-out words right:"));
        Answers(baseAnswers);

        string adapterConfig = Path.Combine(root, "lora_config.json");
        File.WriteAllText(adapterConfig, UppercaseTask.AdapterConfig().ToJsonString());
        string output = Path.Combine(root, "finetuned");
        AnsiConsole.MarkupLine("   training LoRA r=16 on q/k/v/o/gate/up/down and lm_head: 250 steps of 32 rows, AdamW lr 5e-3, linear schedule");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TrainResult result = FineTuningJob.Run(new FineTuningRequest
        {
            ModelFolder = modelDir, DataFile = train, AdapterConfigFile = adapterConfig, Arguments = UppercaseTask.Settings(output),
            ArgumentsSource = "the demo's settings", PluginsFolder = catalog.PluginsDirectory,
        }, new DemoProgress());
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"   trained {result.GlobalStep} steps in {clock.Elapsed.TotalSeconds:F1} s; saved in PEFT's layout: {string.Join(", ", Directory.GetFiles(output).Select(Path.GetFileName).Order())}"));

        (double after, IReadOnlyList<UppercaseTask.Answer> trained) = Score(catalog, modelDir, output, tokenizer, heldOut);
        Step(4, string.Create(CultureInfo.InvariantCulture, $"The adapter reloaded from {output} into a fresh base model: {after:P0} of the held-out words right (before: {before:P0})"));
        Answers(trained);

        (_, nn.Module fresh) = ModelFactory.Load(modelDir);
        using var peft = PeftModel.FromPretrained(fresh, output, catalog);
        nn.Module merged = peft.MergeAndUnload();
        using var plain = new PeftModel(merged, catalog);
        (double mergedScore, IReadOnlyList<UppercaseTask.Answer> mergedAnswers) = UppercaseTask.Score(plain, tokenizer, heldOut);
        int same = mergedAnswers.Zip(trained).Count(p => p.First.Output == p.Second.Output);
        Step(5, string.Create(CultureInfo.InvariantCulture, $"merge_and_unload: a plain Llama with the update in its weights answers {same} of {trained.Count} held-out words as the adapter did ({mergedScore:P0} right)"));
        merged.Dispose();
    }

    private static (double, IReadOnlyList<UppercaseTask.Answer>) Score(PluginCatalog catalog, string modelDir, string? adapter, ITextTokenizer tokenizer, string heldOut)
    {
        (_, nn.Module model) = ModelFactory.Load(modelDir);
        using (model)
        using (var peft = adapter is null ? new PeftModel(model, catalog) : PeftModel.FromPretrained(model, adapter, catalog))
            return UppercaseTask.Score(peft, tokenizer, heldOut);
    }

    private static void Answers(IReadOnlyList<UppercaseTask.Answer> answers)
    {
        foreach (UppercaseTask.Answer a in answers.Take(5))
            AnsiConsole.MarkupLine($"     {Markup.Escape(a.Prompt)} -> {Markup.Escape(Printable(a.Output))} {(a.Correct ? "[green]right[/]" : $"[red]wrong[/] (expected {Markup.Escape(a.Expected)})")}");
    }

    // A random model's bytes are rarely text: anything outside printable ASCII shows as '?'.
    private static string Printable(string text) => new(text.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    // One line per log step: the loss falling.
    private sealed class DemoProgress : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress p)
        {
            if (p.Phase == TrainingPhase.Log && p.Metrics is { } m && m.ContainsKey("loss"))
                AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"     step {p.Step,3}/{p.MaxSteps}  loss {m["loss"]:F4}  lr {m["learning_rate"]:E2}"));
        }
    }

    private static Tensor Logits(ICausalLM lm, Tensor ids)
    {
        using (no_grad()) return lm.Forward(ids);
    }

    private static void Step(int n, string text) => AnsiConsole.MarkupLine($"\n[bold]{n}.[/] {Markup.Escape(text)}");

    private static double Diff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
