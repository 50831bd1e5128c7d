using PeftHost.Engine.Plugins;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests;

public class PluginDiscoveryTests
{
    private static PluginCatalog Scan(string dir, PluginTrustList? trust = null)
    {
        var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = dir, TrustMode = trust is null ? "off" : "allow-list", TrustList = trust });
        catalog.Scan();
        return catalog;
    }

    [Fact]
    public void Installed_plugins_load_and_serve_all_their_peft_types()
    {
        using PluginCatalog catalog = Scan(PluginDirs.Installed);
        Assert.All(catalog.Plugins, p => Assert.True(p.Status == PluginStatus.Loaded, $"{p.Id}: {p.Error}"));
        Assert.Equal(["adalora", "bitfit", "boft", "bottleneck", "fourierft", "ia3", "ln-tuning", "loha", "lokr", "lora", "oft", "prompt-tuning", "vera"], catalog.Plugins.Select(p => p.Id).Order().ToArray());
        Assert.Equal(["ADALORA", "BITFIT", "BOFT", "BOTTLENECK", "FOURIERFT", "IA3", "LN_TUNING", "LOHA", "LOKR", "LORA", "OFT", "PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "VERA"], catalog.PeftTypes.ToArray());
        Assert.Equal("LORA", catalog.GetTuner("LORA").PeftType);
        Assert.All(catalog.Plugins, p => Assert.True(Path.IsPathRooted(p.Path) && File.Exists(p.Path)));
    }

    [Fact]
    public void Plugin_folders_hold_only_the_plugins_own_files()
    {
        foreach (string folder in Directory.GetDirectories(PluginDirs.Installed))
        {
            string[] files = Directory.GetFiles(folder).Select(Path.GetFileName).ToArray()!;
            Assert.DoesNotContain(files, f => f!.StartsWith("TorchSharp", StringComparison.Ordinal) || f.StartsWith("PeftHost.Abstractions", StringComparison.Ordinal) || f.EndsWith(".so", StringComparison.Ordinal));
            Assert.Single(files, f => f!.EndsWith(".dll", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Incompatible_contract_major_is_refused_from_metadata_without_running_plugin_code()
    {
        using var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("ContractV2"), Path.Combine(dir.Path, "contract-v2"));
        using PluginCatalog catalog = Scan(dir.Path);
        PluginInfo info = catalog.Plugins.Single(p => p.Id == "contract-v2");
        Assert.Equal(PluginStatus.Failed, info.Status);
        Assert.Contains("built against contract 2.0; this host implements contract 1.3", info.Error);
        Assert.Equal(["CONTRACT_V2"], info.Methods);
        Assert.Equal(PluginStatus.Loaded, catalog.Plugins.Single(p => p.Id == "lora").Status);
        var e = Assert.Throws<KeyNotFoundException>(() => catalog.GetTuner("CONTRACT_V2"));
        Assert.Contains("contract-v2", e.Message);
    }

    [Fact]
    public void Missing_dependency_names_the_assembly_and_the_others_still_load()
    {
        using var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("MissingDep"), Path.Combine(dir.Path, "missing-dep"));
        using PluginCatalog catalog = Scan(dir.Path);
        PluginInfo info = catalog.Plugins.Single(p => p.Id == "missing-dep");
        Assert.Equal(PluginStatus.Failed, info.Status);
        Assert.Contains("missing dependency: FixtureDependency", info.Error);
        Assert.Equal(PluginStatus.Loaded, catalog.Plugins.Single(p => p.Id == "lora").Status);
    }

    [Fact]
    public void Bad_image_is_reported_for_that_file()
    {
        using var dir = PluginDirs.Scratch("lora");
        string broken = Path.Combine(dir.Path, "broken");
        Directory.CreateDirectory(broken);
        File.WriteAllBytes(Path.Combine(broken, "Broken.dll"), [0x4d, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8]);
        using PluginCatalog catalog = Scan(dir.Path);
        PluginInfo info = catalog.Plugins.Single(p => p.Id == "broken");
        Assert.Equal(PluginStatus.Failed, info.Status);
        Assert.Contains("bad image", info.Error);
        Assert.EndsWith("Broken.dll", info.Path);
        Assert.Contains("LORA", catalog.PeftTypes);
    }

    [Fact]
    public void Two_plugins_claiming_one_peft_type_fail_the_second_clearly()
    {
        using var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("DuplicateLora"), Path.Combine(dir.Path, "zz-duplicate-lora"));
        using PluginCatalog catalog = Scan(dir.Path);
        PluginInfo dup = catalog.Plugins.Single(p => p.Id == "duplicate-lora");
        Assert.Equal(PluginStatus.Failed, dup.Status);
        Assert.Contains("peft_type 'LORA' is already served by plugin 'lora'", dup.Error);
        Assert.Equal("lora", catalog.GetPlugin("LORA").Manifest.Id);
    }

    [Fact]
    public void Folder_without_a_plugin_assembly_says_so()
    {
        using var dir = PluginDirs.Scratch();
        Directory.CreateDirectory(Path.Combine(dir.Path, "empty"));
        using PluginCatalog catalog = Scan(dir.Path);
        Assert.Contains("no plugin assembly", catalog.Plugins.Single().Error);
    }

    [Fact]
    public void Missing_plugins_folder_throws_naming_it()
    {
        using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = "/nonexistent/plugins-folder" });
        var e = Assert.Throws<DirectoryNotFoundException>(catalog.Scan);
        Assert.Contains("/nonexistent/plugins-folder", e.Message);
    }

    [Fact]
    public void Unknown_peft_type_lists_what_is_served()
    {
        using PluginCatalog catalog = Scan(PluginDirs.Installed);
        var e = Assert.Throws<KeyNotFoundException>(() => catalog.GetTuner("NO_SUCH_METHOD"));
        Assert.Contains("No plugin serves peft_type 'NO_SUCH_METHOD'", e.Message);
        Assert.Contains("LORA", e.Message);
    }

    [Fact]
    public void Trust_list_loads_listed_files_and_refuses_unknown_or_changed_ones()
    {
        using var dir = PluginDirs.Scratch("lora", "ia3");
        string loraDll = Directory.GetFiles(Path.Combine(dir.Path, "lora"), "*.dll").Single();
        var trust = new PluginTrustList([PluginTrustList.HashFile(loraDll)]);
        using (PluginCatalog catalog = Scan(dir.Path, trust))
        {
            Assert.Equal(PluginStatus.Loaded, catalog.Plugins.Single(p => p.Id == "lora").Status);
            PluginInfo ia3 = catalog.Plugins.Single(p => p.Id == "ia3");
            Assert.Equal(PluginStatus.Refused, ia3.Status);
            Assert.Contains("is not in the plugin trust list", ia3.Error);
        }
        // The same file name with other bytes (a different build) is refused too.
        PluginDirs.Copy(PluginDirs.LoraAlt, Path.Combine(dir.Path, "lora"));
        using (PluginCatalog catalog = Scan(dir.Path, trust))
            Assert.Equal(PluginStatus.Refused, catalog.Plugins.Single(p => p.Id == "lora").Status);
    }

    [Fact]
    public void Trust_list_file_rejects_a_malformed_line_naming_it()
    {
        using var dir = PluginDirs.Scratch();
        string file = Path.Combine(dir.Path, "trust.txt");
        File.WriteAllText(file, "# comment\n" + new string('a', 64) + "  lora.dll\nnot-a-hash\n");
        var e = Assert.Throws<InvalidDataException>(() => PluginTrustList.FromFile(file));
        Assert.Contains("trust.txt:3", e.Message);
    }
}
