using PeftHost.Abstractions.State;
using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Engine.Peft;
using PeftHost.Formats.Gguf;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Llama;

/// <summary>
/// How the GGUF backends route each adapter, asked of its method (ILowRankExportModel, CanMerge): pairs
/// stay unmerged as GGUF-LoRA (AdaLoRA's included, an embedding's), the rest is merged into the cached
/// base with the method's reason, prompt learning is refused before anything is exported, and the
/// answer is cached so that a second run needs no plugin. Logits against PEFT 0.13.2's within 1e-3.
/// </summary>
public sealed class GgufAdapterRoutingTests : IDisposable
{
    private const double Tolerance = 1e-3;
    private readonly ScratchFolder _scratch = new();

    private string Cache => Path.Combine(_scratch.Path, "cache");

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Adalora_runs_unmerged_as_gguf_lora_and_equals_peft()
    {
        string c = LlamaFixtures.CaseFolder("adalora_llama");
        using IInferenceBackend llama = Open(Path.Combine(c, "base"), new AdapterSpec("a", Path.Combine(c, "adapter")));
        Assert.Equal([new AdapterScale("a", 1.0)], llama.Adapters);
        Assert.Empty(llama.MergedAdapters);
        AssertLogits(c, llama, "logits_adapter");
        // Scale 0 is the base: the pairs are the whole adapter.
        AssertLogits(c, llama, "logits_base", [new AdapterScale("a", 0.0)]);
    }

    [Fact]
    public void An_embedding_lora_is_merged_when_peft_saved_the_base_embedding_with_it_and_unmerged_otherwise()
    {
        string c = LlamaFixtures.CaseFolder("lora_embedding_llama");
        using (IInferenceBackend saved = Open(Path.Combine(c, "base"), new AdapterSpec("e", Path.Combine(c, "adapter"))))
        {
            MergedAdapter merged = Assert.Single(saved.MergedAdapters);
            Assert.Contains("copy of the base weights of 'model.embed_tokens'", merged.Reason);
            AssertLogits(c, saved, "logits_adapter");
        }

        // The same factors, targeted by a pattern (PEFT then saves no base copy): token_embd.lora_a / lora_b in llama.cpp.
        string patterned = Path.Combine(_scratch.Path, "patterned");
        using (AdapterState state = AdapterFolder.Read(Path.Combine(c, "adapter"), "default"))
        {
            state.Config["target_modules"] = @".*(embed_tokens|q_proj)";
            AdapterFolder.Write(patterned, new AdapterState("default", state.Config, state.Tensors.Where(t => !t.Key.Contains(".base_layer.", StringComparison.Ordinal)).ToDictionary()), prefixKeys: true);
        }
        using IInferenceBackend unmerged = Open(Path.Combine(c, "base"), new AdapterSpec("e", patterned));
        Assert.Equal([new AdapterScale("e", 1.0)], unmerged.Adapters);
        Assert.Empty(unmerged.MergedAdapters);
        AssertLogits(c, unmerged, "logits_adapter");
    }

    [Fact]
    public void The_answer_is_cached_so_a_second_run_asks_no_plugin()
    {
        string dora = LlamaFixtures.CaseFolder("lora_dora_llama"), lora = LlamaFixtures.CaseFolder("lora_rslora_llama");
        using (IInferenceBackend first = Open(Path.Combine(dora, "base"), new AdapterSpec("d", Path.Combine(dora, "adapter"))))
            Assert.Contains("DoRA", Assert.Single(first.MergedAdapters).Reason);
        string note = Assert.Single(Directory.GetFiles(Cache, "lora-*.refused"));
        Assert.Contains("magnitude", File.ReadAllText(note));
        using (IInferenceBackend first = Open(Path.Combine(lora, "base"), new AdapterSpec("l", Path.Combine(lora, "adapter")))) { }

        // No plugins at all now: both answers and files come from the cache.
        string noPlugins = Directory.CreateDirectory(Path.Combine(_scratch.Path, "no-plugins")).FullName;
        using (IInferenceBackend again = Open(Path.Combine(dora, "base"), noPlugins, new AdapterSpec("d", Path.Combine(dora, "adapter"))))
        {
            Assert.Contains("DoRA", Assert.Single(again.MergedAdapters).Reason);
            AssertLogits(dora, again, "logits_adapter");
        }
        using (IInferenceBackend again = Open(Path.Combine(lora, "base"), noPlugins, new AdapterSpec("l", Path.Combine(lora, "adapter"))))
        {
            Assert.Equal([new AdapterScale("l", 1.0)], again.Adapters);
            AssertLogits(lora, again, "logits_adapter");
        }
        // Without the cache the plugins are needed, and their absence is said.
        Directory.Delete(Cache, recursive: true);
        Assert.Throws<KeyNotFoundException>(() => Open(Path.Combine(lora, "base"), noPlugins, new AdapterSpec("l", Path.Combine(lora, "adapter"))));
    }

    [Fact]
    public void Prompt_learning_is_refused_before_anything_is_exported()
    {
        string c = LlamaFixtures.CaseFolder("prompt_tuning_llama");
        var e = Assert.Throws<NotSupportedException>(() => Open(Path.Combine(c, "base"), new AdapterSpec("pt", Path.Combine(c, "adapter"))));
        Assert.Contains("neither be applied unmerged", e.Message);
        Assert.Contains("peft_type PROMPT_TUNING", e.Message);
        Assert.True(!Directory.Exists(Cache) || Directory.GetFiles(Cache).Length == 0, "nothing exported or noted for a refused adapter");
    }

    private IInferenceBackend Open(string model, params AdapterSpec[] adapters) => Open(model, PluginDirs.Installed, adapters);

    private IInferenceBackend Open(string model, string plugins, params AdapterSpec[] adapters) =>
        InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Llama, model, Cache, GgmlType.F32, adapters) with { PluginsFolder = plugins });

    private static void AssertLogits(string caseFolder, IInferenceBackend backend, string reference, IReadOnlyList<AdapterScale>? adapters = null)
    {
        int[][] rows = LlamaFixtures.Rows(Path.Combine(caseFolder, "inputs.json"));
        double diff = LlamaFixtures.MaxAbsDiff(LlamaFixtures.Reference(Path.Combine(caseFolder, reference + ".safetensors")), LlamaFixtures.AllLogits(backend, rows, adapters));
        Assert.True(diff < Tolerance, $"{Path.GetFileName(caseFolder)} vs {reference}: max |llama - peft| = {diff}");
    }
}
