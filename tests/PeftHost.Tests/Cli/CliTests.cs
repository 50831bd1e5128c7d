using System.Text.Json.Nodes;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests;

public class CliTests
{
    [Fact]
    public void Plugins_json_lists_the_installed_plugins_loaded_with_all_their_peft_types()
    {
        (int code, string stdout, string stderr) = Cli.Run("plugins", "--json");
        Assert.True(code == 0, stderr);
        JsonArray plugins = JsonNode.Parse(stdout)!.AsArray();
        Assert.Equal(["adalora", "bitfit", "boft", "bottleneck", "fourierft", "ia3", "ln-tuning", "loha", "lokr", "lora", "oft", "prompt-tuning", "vera"], plugins.Select(p => p!["id"]!.GetValue<string>()).Order().ToArray());
        Assert.All(plugins, p => Assert.Equal("loaded", p!["status"]!.GetValue<string>()));
        Assert.All(plugins, p => Assert.True(File.Exists(p!["path"]!.GetValue<string>())));
        Assert.All(plugins, p => Assert.Null(p!["error"]));
        Assert.Equal(["ADALORA", "BITFIT", "BOFT", "BOTTLENECK", "FOURIERFT", "IA3", "LN_TUNING", "LOHA", "LOKR", "LORA", "OFT", "PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING", "VERA"],
            plugins.SelectMany(p => p!["methods"]!.AsArray().Select(m => m!.GetValue<string>())).Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void Plugins_json_reports_failures_with_exit_code_zero_and_an_unreadable_folder_non_zero()
    {
        using var dir = PluginDirs.Scratch("lora");
        PluginDirs.Copy(PluginDirs.Fixture("ContractV2"), Path.Combine(dir.Path, "contract-v2"));
        (int code, string stdout, _) = Cli.Run("plugins", "--json", "--plugins", dir.Path);
        Assert.Equal(0, code);
        JsonNode failed = JsonNode.Parse(stdout)!.AsArray().Single(p => p!["id"]!.GetValue<string>() == "contract-v2")!;
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Contains("contract 2.0", failed["error"]!.GetValue<string>());

        (int missing, _, string stderr) = Cli.Run("plugins", "--json", "--plugins", Path.Combine(dir.Path, "nope"));
        Assert.Equal(2, missing);
        Assert.Contains("Plugins folder not found", stderr);
    }

    [Fact]
    public void Doctor_json_reports_dotnet_torchsharp_native_fix_devices_and_plugins()
    {
        (int code, string stdout, string stderr) = Cli.Run("doctor", "--json");
        Assert.True(code == 0, stderr);
        JsonNode doctor = JsonNode.Parse(stdout)!;
        Assert.Equal(Environment.Version.ToString(), doctor["dotnet"]!["version"]!.GetValue<string>());
        Assert.Equal("0.107.0", doctor["torchsharp"]!["version"]!.GetValue<string>());
        Assert.Equal("cpu", doctor["torchsharp"]!["backend"]!.GetValue<string>());
        Assert.Contains(doctor["torchsharp"]!["native_fix"]!.GetValue<string>(), new[] { "applied", "not-needed" });
        Assert.True(doctor["torchsharp"]!["loads"]!.GetValue<bool>());
        Assert.Contains("cpu", doctor["devices"]!.AsArray().Select(d => d!.GetValue<string>()));
        Assert.Equal(13, doctor["plugins"]!.AsArray().Count);
        Assert.True(Path.IsPathRooted(doctor["plugins_dir"]!.GetValue<string>()));
    }

    [Fact]
    public void Doctor_json_reports_whether_llama_cpps_native_library_loads_and_which_build()
    {
        (int code, string stdout, string stderr) = Cli.Run("doctor", "--json");
        Assert.True(code == 0, stderr);
        JsonNode llama = JsonNode.Parse(stdout)!["llama_cpp"]!;
        // The build copies LLamaSharp.Backend.Cpu's libraries beside the CLI, and the llama backend's tests load them.
        Assert.True(llama["loads"]!.GetValue<bool>(), llama["error"]?.GetValue<string>());
        Assert.True(llama["native_folder_exists"]!.GetValue<bool>());
        Assert.StartsWith("cpu", llama["build"]!.GetValue<string>());
        Assert.Contains("CPU", llama["system_info"]!.GetValue<string>());
    }

    [Fact]
    public void Bench_reload_ends_with_one_json_object_and_leaks_no_context()
    {
        (int code, string stdout, string stderr) = Cli.Run("bench", "reload", "--count", "6", "--json");
        Assert.True(code == 0, stderr + stdout);
        JsonNode result = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!;
        Assert.Equal(6, result["reloads"]!.GetValue<int>());
        Assert.Equal(0, result["leaked_contexts"]!.GetValue<int>());
        Assert.True(result["p50_ms"]!.GetValue<double>() > 0);
        Assert.True(result["p95_ms"]!.GetValue<double>() >= result["p50_ms"]!.GetValue<double>());
        Assert.NotNull(result["rss_growth_mb"]);
    }

    [Fact]
    public void Bench_qlora_ends_with_one_json_object_of_the_quantized_base()
    {
        (int code, string stdout, string stderr) = Cli.Run("bench", "qlora", "--sizes", "tiny", "--rounds", "1", "--json");
        Assert.True(code == 0, stderr + stdout);
        JsonNode model = JsonNode.Parse(stdout.TrimEnd().Split('\n')[^1])!["models"]![0]!;
        Assert.Equal("llama tiny", model["model"]!.GetValue<string>());
        Assert.Equal(4.5, model["nf4_bits_per_weight"]!.GetValue<double>());
        Assert.InRange(model["nf4_dq_bits_per_weight"]!.GetValue<double>(), 4.12, 4.2);
        Assert.True(model["nf4_bytes"]!.GetValue<long>() < model["f32_bytes"]!.GetValue<long>());
        Assert.True(model["nf4_logits_max_error"]!.GetValue<double>() > 0);
        Assert.True(model["nf4_forward_seconds"]!.GetValue<double>() > 0);
        Assert.True(model["qlora_forward_ratio"]!.GetValue<double>() > 0);
        Assert.True(model["qlora_step_seconds"]!.GetValue<double>() > 0);
        Assert.True(model["lora_step_seconds"]!.GetValue<double>() > 0);
        Assert.True(model["adapter_trainable_parameters"]!.GetValue<long>() > 0);
    }

    [Fact]
    public void Demo_runs_with_no_arguments_and_shows_a_hot_reload_with_identical_numbers()
    {
        (int code, string stdout, string stderr) = Cli.Run("demo");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("watcher reloaded lora 0.1.0 -> 0.1.0.1", stdout);
        Assert.Contains("max |after - before reload| = 0 ", stdout);
        Assert.Contains("max |output - base| = 0 ", stdout);
        Assert.Contains("max |loaded - adapted| = 0", stdout);
        Assert.Contains("(0 LoRA modules left)", stdout);
        // Fine-tuning comes first: the loss falls, and the reloaded adapter answers held-out words.
        Assert.Contains("before training, the random base model gets", stdout);
        Assert.Contains("step 250/250", stdout);
        Assert.Contains("into a fresh base model:", stdout);
        Assert.Contains("merge_and_unload: a plain Llama with the update in its weights answers", stdout);
    }
}

public class AdapterInspectCliTests
{
    [Fact]
    public void Adapter_inspect_shows_the_conformance_adapters_config_tensors_and_parameter_count()
    {
        string dir = Path.Combine(Conformance.Root, "lora_qv", "adapter");
        (int code, string stdout, string stderr) = Cli.Run("adapter", "inspect", dir, "--json");
        Assert.True(code == 0, stderr);
        JsonNode o = JsonNode.Parse(stdout)!;
        Assert.Equal("LORA", o["config"]!["peft_type"]!.GetValue<string>());
        Assert.Equal(8, o["tensors"]!.AsObject().Count);
        Assert.Equal(new long[] { 32, 8 }, o["tensors"]!["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]!["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray());
        // r=8 on q (64->64) and v (64->32), 2 layers: 2 * (8*64 + 64*8 + 8*64 + 32*8) = 3584.
        Assert.Equal(3584, o["parameters"]!.GetValue<long>());

        (int missing, _, string err) = Cli.Run("adapter", "inspect", Path.Combine(dir, "nope"));
        Assert.Equal(2, missing);
        Assert.Contains("no such adapter folder", err);
        (missing, _, err) = Cli.Run("adapter", "inspect", Conformance.Case("lora_qv"));
        Assert.Equal(2, missing);
        Assert.Contains("No adapter_config.json", err);
    }
}
