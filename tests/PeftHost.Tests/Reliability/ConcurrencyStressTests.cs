using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Layers;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Reliability;

/// <summary>
/// A PeftModel and its PluginCatalog used from many threads at once for a bounded time: forward passes naming their
/// adapters per row, adapters added, deleted, activated and hotswapped, merges and unmerges, plugin reloads between
/// two builds, and other models coming and going on the same catalog. No deadlock (every thread ends within the
/// timeout), no exception but the documented refusal of a mixed batch while an adapter is merged, and every forward
/// equal to the serial result for the adapters it named (1e-5: a merge rounds the weights).
/// </summary>
public sealed class ConcurrencyStressTests
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan Deadlock = TimeSpan.FromMinutes(3);
    private const double Tolerance = 1e-5;

    [Fact]
    public void Forwards_adapter_changes_merges_hotswaps_and_reloads_from_many_threads_agree_with_the_serial_results()
    {
        using ScratchFolder plugins = PluginDirs.Scratch("lora");
        string loraFolder = Path.Combine(plugins.Path, "lora");
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = plugins.Path, HotReload = false });
        catalog.Scan();
        var model = new TwoBlocks(hidden: 16, seed: 7);
        using var peft = new PeftModel(model, catalog);
        peft.AddAdapter("a", Lora(2, seed: 1));
        peft.AddAdapter("b", Lora(3, seed: 2));
        peft.PrepareForHotswap(4);
        using AdapterState b = peft.ExportAdapter("b");
        peft.Hotswap(Copy(b));

        using Tensor x = torch.randn(4, 16, generator: new torch.Generator(11));
        string[] names = ["a", "b", AdapterRouting.BaseModel];
        var reference = names.ToDictionary(n => n, n => peft.Forward(x, [.. Enumerable.Repeat(n, 4)]).detach().clone());
        Assert.True(Tensors.MaxAbsDiff(reference["a"], reference["b"]) > 1e-2 && Tensors.MaxAbsDiff(reference["a"], reference[AdapterRouting.BaseModel]) > 1e-2,
            "the adapters must change the output for the comparison to mean anything");

        var errors = new ConcurrentQueue<string>();
        var counts = new ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        bool Running() => clock.Elapsed < Duration && errors.IsEmpty;
        void Count(string what) => counts.AddOrUpdate(what, 1, (_, n) => n + 1);

        void Worker(string name, Action<Random> step) => Guarded(name, () =>
        {
            var random = new Random(name.GetHashCode(StringComparison.Ordinal));
            while (Running())
            {
                step(random);
                Count(name);
            }
        }, errors);

        var threads = new List<Thread>();
        for (int i = 0; i < 3; i++)
        {
            string worker = $"forward {i}";
            threads.Add(Start(worker, () => Worker(worker, random =>
            {
                // Rows named one by one, or all with one adapter (the plain forward of the active adapter, merged or not).
                string[] rows = random.Next(3) == 0 ? [.. Enumerable.Repeat("a", 4)] : [.. Enumerable.Range(0, 4).Select(_ => names[random.Next(names.Length)])];
                Tensor y;
                try
                {
                    using (no_grad()) y = peft.Forward(x, rows);
                }
                catch (InvalidOperationException e) when (e.Message.Contains("needs unmerged adapters", StringComparison.Ordinal))
                {
                    Count("refused while merged");
                    return;
                }
                using (y)
                using (NewDisposeScope())
                    for (int r = 0; r < rows.Length; r++)
                    {
                        double diff = Tensors.MaxAbsDiff(y[r], reference[rows[r]][r]);
                        if (diff > Tolerance) errors.Enqueue($"row {r} with '{rows[r]}' of [{string.Join(", ", rows)}] differs from the serial result by {diff}");
                    }
            })));
        }
        threads.Add(Start("adapters", () => Worker("adapters", _ =>
        {
            peft.AddAdapter("tmp", Lora(2, seed: 3));
            peft.SetActiveAdapters("b");
            peft.SetActiveAdapters("a");
            peft.DeleteAdapter("tmp");
        })));
        threads.Add(Start("merge", () => Worker("merge", _ =>
        {
            peft.Merge(["a"]);
            Thread.Sleep(1);
            peft.Unmerge();
        })));
        threads.Add(Start("hotswap", () => Worker("hotswap", _ =>
        {
            using AdapterState same = Copy(b);
            peft.Hotswap(same);
        })));
        threads.Add(Start("reload", () => Worker("reload", random =>
        {
            PluginDirs.Copy(random.Next(2) == 0 ? PluginDirs.LoraAlt : Path.Combine(PluginDirs.Installed, "lora"), loraFolder);
            ReloadResult r = catalog.Reload(loraFolder);
            if (!r.Succeeded) errors.Enqueue($"reload failed: {r.Error}");
        })));
        threads.Add(Start("other models", () => Worker("other models", random =>
        {
            var other = new TwoBlocks(hidden: 16, seed: 8);
            using var second = new PeftModel(other, catalog);
            second.AddAdapter("z", Lora(2, seed: 4));
            using (no_grad()) second.Forward(x).Dispose();
            _ = catalog.Plugins.Count + catalog.PeftTypes.Count;
        })));

        foreach (Thread t in threads)
            Assert.True(t.Join(Deadlock), $"thread '{t.Name}' did not finish within {Deadlock}: a deadlock ({Summary(counts)})");
        Assert.True(errors.IsEmpty, string.Join("\n", errors.Take(10)) + $"\n({Summary(counts)})");
        TestContext.Current.TestOutputHelper?.WriteLine($"steps: {Summary(counts)}");
        foreach (string worker in new[] { "forward 0", "forward 1", "forward 2", "adapters", "merge", "hotswap", "reload", "other models" })
            Assert.True(counts.GetValueOrDefault(worker) > 0, $"'{worker}' never ran a step ({Summary(counts)})");

        // Afterwards, serially: the same results, one LoRA build serving, nothing merged, no leaked load context.
        Assert.Empty(peft.MergedAdapters);
        Assert.Equal(["a", "b"], peft.Adapters);
        foreach (string n in names)
            using (Tensor y = peft.Forward(x, [.. Enumerable.Repeat(n, 4)]))
                Assert.True(Tensors.MaxAbsDiff(y, reference[n]) < Tolerance, n);
        foreach (Tensor t in reference.Values) t.Dispose();
        peft.Dispose();
        Assert.Equal(0, catalog.CountLeakedContexts());
    }

    private static JsonObject Lora(int r, int seed)
    {
        JsonObject config = Configs.Lora("q_proj", "v_proj");
        config["r"] = r;
        config["lora_alpha"] = 2 * r + seed;
        return config;
    }

    private static AdapterState Copy(AdapterState state) =>
        new(state.Name, (JsonObject)state.Config.DeepClone(), state.Tensors.ToDictionary(t => t.Key, t => t.Value.clone(), StringComparer.Ordinal));

    private static Thread Start(string name, Action body)
    {
        var thread = new Thread(() => body()) { Name = name, IsBackground = true };
        thread.Start();
        return thread;
    }

    private static void Guarded(string name, Action body, ConcurrentQueue<string> errors)
    {
        try { body(); }
        catch (Exception e) { errors.Enqueue($"{name}: {e}"); }
    }

    private static string Summary(ConcurrentDictionary<string, int> counts) => string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}"));
}
