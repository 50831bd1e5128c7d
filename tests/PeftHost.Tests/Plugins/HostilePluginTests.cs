using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.State;
using PeftHost.Engine.Peft;
using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Plugins;

/// <summary>
/// Plugins that misbehave on purpose (tests/Fixtures/Hostile, Leaky, DependencyV1/V2): the host survives each,
/// names the plugin and the operation, rolls back, and reports a load context that will not unload.
/// </summary>
public sealed class HostilePluginTests : IDisposable
{
    private const string FailKey = "Hostile.Fail"; // read by the fixture (AppContext is one per process)
    private readonly ScratchFolder _plugins;
    private readonly PluginCatalog _catalog;

    public HostilePluginTests()
    {
        _plugins = PluginDirs.Scratch("lora");
        foreach ((string fixture, string id) in new[] { ("Hostile", "hostile"), ("DependencyV1", "dependency-v1"), ("DependencyV2", "dependency-v2") })
            PluginDirs.Copy(PluginDirs.Fixture(fixture), Path.Combine(_plugins.Path, id));
        _catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = _plugins.Path, HotReload = false });
        _catalog.Scan();
    }

    public void Dispose()
    {
        AppContext.SetData(FailKey, null);
        _catalog.Dispose();
        _plugins.Dispose();
    }

    private static JsonObject Hostile(string export = "ok", string forward = "ok", string[]? targets = null) => new()
    {
        ["peft_type"] = "HOSTILE", ["target_modules"] = new JsonArray([.. (targets ?? ["q_proj", "v_proj"]).Select(t => JsonValue.Create(t))]),
        ["init_scale"] = 1.5, ["export"] = export, ["forward"] = forward,
    };

    /// <summary>Each contract member, the host operation that calls it, and the operation the error names.</summary>
    public static TheoryData<string, string, string> Members() => new()
    {
        { "ParseConfig", "add", "apply" },
        { "Attach", "add", "attach" },
        { "AddAdapter", "add", "apply" },
        { "ImportAdapter", "load", "apply" },
        { "ExportAdapter", "save", "export" },
        { "DeleteAdapter", "delete", "delete" },
        { "SetActiveAdapters", "activate", "set active adapters" },
        { "SetActiveAdapters", "add", "set active adapters" },
        { "Enabled.set", "disable", "enable" },
        { "Merge", "merge", "merge" },
        { "CanMerge", "merge", "merge" },
        { "MergedAdapters", "merged", "list merged adapters" },
        { "Unmerge", "unmerge", "unmerge" },
        { "NamedParameters", "parameters", "list parameters" },
        { "forward", "forward", "forward" },
        { "PrepareForHotswap", "prepare hotswap", "prepare hotswap" },
        { "Hotswap", "hotswap", "hotswap" },
    };

    [Theory]
    [MemberData(nameof(Members))]
    public void A_throwing_contract_member_is_a_fault_naming_the_plugin_and_the_operation_and_nothing_changes(string member, string action, string operation)
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        using Tensor x = torch.randn(2, 8);
        using Tensor baseOutput = model.forward(x);
        using var saved = new ScratchFolder();
        peft.AddAdapter("a", Hostile());
        peft.AddAdapter("b", Hostile());
        using AdapterState exported = peft.ExportAdapter("a");
        if (action == "load")
        {
            peft.SavePretrained(saved.Path, ["b"]);
            peft.DeleteAdapter("b");
        }
        if (action == "add") peft.DeleteAdapter("b");
        if (action == "add" && member != "SetActiveAdapters") peft.DeleteAdapter("a"); // the fault comes with the first adapter
        if (action is "unmerge" or "merged") peft.Merge();
        var state = Snapshot(peft, model, x);

        AppContext.SetData(FailKey, member);
        PluginFaultException e;
        try
        {
            e = Assert.Throws<PluginFaultException>(() => Act(peft, action, x, saved.Path, exported));
        }
        finally
        {
            AppContext.SetData(FailKey, null);
        }
        Assert.Equal("hostile", e.PluginId);
        Assert.Equal(operation, e.Operation);
        Assert.Contains($"Plugin 'hostile' 0.1.0 failed during {operation}", e.Message);
        Assert.Contains($"hostile fixture fails in {member}", e.Message);
        Assert.Equal(state, Snapshot(peft, model, x));

        // Still usable: the same operation now succeeds, and unloading gives the base back (to rounding after a merge).
        Act(peft, action, x, saved.Path, exported);
        peft.Unload();
        using Tensor after = model.forward(x);
        Assert.True(Tensors.MaxAbsDiff(after, baseOutput) < 1e-5);
    }

    [Fact]
    public void A_detach_that_throws_is_logged_and_the_host_restores_the_base_model_itself()
    {
        var model = new TwoBlocks();
        using Tensor x = torch.randn(2, 8);
        using Tensor baseOutput = model.forward(x);
        var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Hostile());
        AppContext.SetData(FailKey, "Detach");
        try
        {
            peft.DeleteAdapter("a"); // the last adapter: the tuner is detached
            Assert.Empty(peft.Adapters);
            Assert.DoesNotContain(model.modules(), m => m.GetType().Name == "HostileLayer");
            peft.AddAdapter("a", Hostile());
            peft.Dispose();
        }
        finally
        {
            AppContext.SetData(FailKey, null);
        }
        Assert.DoesNotContain(model.modules(), m => m.GetType().Name == "HostileLayer");
        using Tensor after = model.forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(after, baseOutput));
    }

    [Fact]
    public void The_host_keeps_its_own_books_and_never_needs_a_plugins_list_getters()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        using Tensor x = torch.randn(2, 8);
        foreach (string member in new[] { "Adapters", "ActiveAdapters", "Enabled.get" })
        {
            AppContext.SetData(FailKey, member);
            try
            {
                peft.AddAdapter("a", Hostile());
                peft.AddAdapter("b", Hostile());
                peft.SetActiveAdapters("b", "a");
                peft.Merge();
                peft.Unmerge();
                using (peft.DisableAdapter()) peft.Forward(x).Dispose();
                Assert.True(_catalog.Reload(Path.Combine(_plugins.Path, "hostile")).Succeeded);
                peft.DeleteAdapter("a");
                peft.DeleteAdapter("b");
            }
            finally
            {
                AppContext.SetData(FailKey, null);
            }
            Assert.Empty(peft.Adapters);
        }
    }

    [Theory]
    [InlineData("shape")]
    [InlineData("dtype")]
    public void A_reload_whose_export_is_malformed_rolls_back_to_the_old_version_exactly(string export)
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Hostile(export, targets: ["v_proj"]));
        peft.AddAdapter("l", Configs.Lora("q_proj"));
        peft.SetActiveAdapters("a", "l");
        using Tensor x = torch.randn(2, 8);
        using Tensor before = peft.Forward(x);
        string pluginBefore = peft.PluginOf("a");

        ReloadResult r = _catalog.Reload(Path.Combine(_plugins.Path, "hostile"));
        Assert.False(r.Succeeded);
        Assert.Equal("hostile", r.PluginId);
        Assert.Contains("rolled back", r.Error);
        // The new version refused the data, naming the tensor and what is wrong with it.
        Assert.Contains("tensor 'layers.0.v_proj.scale'", r.Error);
        Assert.Contains(export == "shape" ? "has shape [2], the model expects [1]" : "is Int64", r.Error);
        Assert.Equal(["a", "l"], peft.Adapters);
        Assert.Equal(["a", "l"], peft.ActiveAdapters);
        Assert.Equal(pluginBefore, peft.PluginOf("a"));
        using Tensor after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
        Assert.Equal(0, _catalog.CountLeakedContexts()); // the refused new version unloaded
    }

    [Fact]
    public void A_reload_that_rolls_back_leaves_a_merged_adapter_merged_once()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        using Tensor x = torch.randn(2, 8);
        using Tensor baseOutput = model.forward(x);
        peft.AddAdapter("a", Hostile("shape", targets: ["v_proj"]));
        using Tensor unmerged = peft.Forward(x);
        peft.Merge();

        ReloadResult r = _catalog.Reload(Path.Combine(_plugins.Path, "hostile"));

        Assert.False(r.Succeeded);
        Assert.Contains("rolled back", r.Error);
        Assert.Equal(["a"], peft.MergedAdapters);
        using (Tensor merged = model.forward(x)) Assert.True(Tensors.MaxAbsDiff(merged, unmerged) < 1e-5);
        peft.Unmerge();
        using (peft.DisableAdapter())
        using (Tensor after = peft.Forward(x))
            Assert.True(Tensors.MaxAbsDiff(after, baseOutput) < 1e-5);
    }

    [Fact]
    public void An_export_a_file_cannot_hold_is_a_fault_and_nothing_is_written()
    {
        using var peft = new PeftModel(new TwoBlocks(), _catalog);
        peft.AddAdapter("default", Hostile("complex"));
        using var dir = new ScratchFolder();
        var e = Assert.Throws<PluginFaultException>(() => peft.SavePretrained(dir.Path));
        Assert.Equal("export", e.Operation);
        Assert.Contains("ComplexFloat32, which no adapter file holds", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public void A_reload_that_succeeds_hands_the_adapters_over_and_frees_the_old_layers()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        peft.AddAdapter("a", Hostile());
        using Tensor x = torch.randn(2, 8);
        using Tensor before = peft.Forward(x);
        ReloadResult r = _catalog.Reload(Path.Combine(_plugins.Path, "hostile"));
        Assert.True(r.Succeeded, r.Error);
        using Tensor after = peft.Forward(x);
        Assert.Equal(0.0, Tensors.MaxAbsDiff(before, after));
        Assert.Equal(4, model.modules().Count(m => m.GetType().Name == "HostileLayer")); // q and v of two blocks: the old layers left the model
        peft.Unload();
        Assert.Equal(0, _catalog.CountLeakedContexts());
    }

    [Fact]
    public void Nan_from_a_plugins_forward_is_a_fault_naming_it()
    {
        var model = new TwoBlocks();
        using var peft = new PeftModel(model, _catalog);
        using Tensor x = torch.randn(2, 8);
        peft.AddAdapter("nan", Hostile(forward: "nan"));
        var e = Assert.Throws<PluginFaultException>(() => peft.Forward(x));
        Assert.Equal("hostile", e.PluginId);
        Assert.Equal("forward", e.Operation);
        Assert.Contains("holds NaN or infinity with adapters nan (", e.Message);
        using (peft.DisableAdapter())
        using (Tensor y = peft.Forward(x))
            Assert.True(y.isfinite().all().item<bool>()); // the base alone is fine
    }

    [Fact]
    public void A_plugin_that_keeps_its_context_alive_is_reported_by_name_in_bounded_time()
    {
        using var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("Leaky"), Path.Combine(dir.Path, "leaky"));
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir.Path, HotReload = false });
        catalog.Scan();
        Assert.Equal(PluginStatus.Loaded, catalog.Plugins.Single(p => p.Id == "leaky").Status);
        Assert.True(catalog.Reload(Path.Combine(dir.Path, "leaky")).Succeeded);
        Assert.True(catalog.Reload(Path.Combine(dir.Path, "lora")).Succeeded);

        var clock = Stopwatch.StartNew();
        IReadOnlyList<LeakedContext> leaked = catalog.LeakedContexts();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        LeakedContext only = Assert.Single(leaked); // lora's old version unloaded; leaky's did not
        Assert.Equal("leaky", only.PluginId);
        Assert.Equal("0.1.0", only.Version);
        Assert.EndsWith("Leaky.dll", only.AssemblyPath);
        Assert.Equal(1, catalog.CountLeakedContexts());
    }

    [Fact]
    public void Two_plugins_shipping_different_versions_of_one_dependency_each_run_their_own()
    {
        Assert.All(_catalog.Plugins.Where(p => p.Id.StartsWith("dependency-", StringComparison.Ordinal)), p => Assert.Equal(PluginStatus.Loaded, p.Status));
        using var peft = new PeftModel(new TwoBlocks(), _catalog);
        peft.AddAdapter("one", new JsonObject { ["peft_type"] = "DEPENDENCY_V1" });
        peft.AddAdapter("two", new JsonObject { ["peft_type"] = "DEPENDENCY_V2" });
        var factors = peft.NamedParameters().Where(p => p.Name.StartsWith("dependency.", StringComparison.Ordinal))
            .ToDictionary(p => p.Name, p => p.Parameter.item<float>());
        Assert.Equal(2.0f, factors["dependency.one.factor"]); // ConflictingDependency 1.0.0
        Assert.Equal(3.0f, factors["dependency.two.factor"]); // ConflictingDependency 2.0.0 (a member 1.0.0 lacks)
    }

    private static void Act(PeftModel peft, string action, Tensor x, string savedFolder, AdapterState exported)
    {
        switch (action)
        {
            case "add": peft.AddAdapter("b", Hostile()); break;
            case "load": peft.LoadAdapter(Path.Combine(savedFolder, "b"), "b"); break;
            case "save":
                using (var dir = new ScratchFolder()) peft.SavePretrained(dir.Path);
                break;
            case "delete": peft.DeleteAdapter("b"); break;
            case "activate": peft.SetActiveAdapters("b"); break;
            case "disable": peft.AdaptersEnabled = false; break;
            case "merge": peft.Merge(); break;
            case "merged": _ = peft.MergedAdapters; break;
            case "unmerge": peft.Unmerge(); break;
            case "parameters": _ = peft.NamedParameters(); break;
            case "forward": peft.Forward(x).Dispose(); break;
            case "prepare hotswap": peft.PrepareForHotswap(4); break;
            case "hotswap": peft.Hotswap(exported with { Tensors = exported.Tensors.ToDictionary(t => t.Key, t => t.Value.clone()) }); break;
            default: throw new ArgumentException(action);
        }
    }

    // What a caller can see: adapters, active, merged, enabled, and the output (as text, to compare exactly).
    private static string Snapshot(PeftModel peft, TwoBlocks model, Tensor x)
    {
        using Tensor y = model.forward(x);
        string values = string.Join(",", y.data<float>().ToArray().Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        string modules = string.Join(",", model.named_modules().Select(m => $"{m.name}:{m.module.GetType().Name}"));
        return $"{string.Join(",", peft.Adapters)}|{string.Join(",", peft.ActiveAdapters)}|{string.Join(",", peft.MergedAdapters)}|{peft.AdaptersEnabled}|{modules}|{values}";
    }
}
