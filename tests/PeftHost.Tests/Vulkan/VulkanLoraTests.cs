using PeftHost.Engine.Inference;
using PeftHost.Engine.Inference.Backends;
using PeftHost.Formats.Gguf;
using PeftHost.Tests.Llama;
using PeftHost.Tests.Support;
using Xunit;

namespace PeftHost.Tests.Vulkan;

/// <summary>
/// The Vulkan forward with a GGUF-LoRA adapter beside the base GGUF, applied unmerged: logits equal
/// PEFT's reference, scales switch per request (0 = the base, 0.5 = PEFT's scaling halved), and the
/// decode step costs two dispatches per adapted matrix.
/// </summary>
public sealed class VulkanLoraTests : IDisposable
{
    private readonly ScratchFolder _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void Unmerged_lora_matches_peft_and_scales_per_request()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        string cache = Path.Combine(_scratch.Path, "cache");
        int[][] rows = LlamaFixtures.Rows(Path.Combine(c, "inputs.json"));
        using IInferenceBackend vk = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Vulkan, Path.Combine(c, "base"), cache, GgmlType.F32,
            new AdapterSpec("a", Path.Combine(c, "adapter"))));
        Assert.Equal([new AdapterScale("a", 1.0)], vk.Adapters);

        double full = LlamaFixtures.MaxAbsDiff(LlamaFixtures.Reference(Path.Combine(c, "logits_adapter.safetensors")), LlamaFixtures.AllLogits(vk, rows));
        Assert.True(full < 1e-3, $"adapter: {full}");
        double none = LlamaFixtures.MaxAbsDiff(LlamaFixtures.Reference(Path.Combine(c, "logits_base.safetensors")), LlamaFixtures.AllLogits(vk, rows, [new AdapterScale("a", 0)]));
        Assert.True(none < 1e-3, $"scale 0: {none}");

        string half = LlamaFixtures.EditedAdapter(Path.Combine(c, "adapter"), Path.Combine(_scratch.Path, "half"), j => j["lora_alpha"] = j["lora_alpha"]!.GetValue<double>() / 2);
        using IInferenceBackend torch = InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Torch, Path.Combine(c, "base"), cache, GgmlType.F32, new AdapterSpec("h", half)));
        double halfDiff = LlamaFixtures.MaxAbsDiff(LlamaFixtures.AllLogits(torch, rows), LlamaFixtures.AllLogits(vk, rows, [new AdapterScale("a", 0.5)]));
        Assert.True(halfDiff < 1e-3, $"scale 0.5: {halfDiff}");
    }

    [Fact]
    public void Each_adapted_matrix_adds_two_dispatches_per_decoded_token()
    {
        string c = LlamaFixtures.CaseFolder("lora_rslora_llama");
        using var vk = (VulkanBackend)InferenceBackends.Open(LlamaFixtures.Options(InferenceBackendKind.Vulkan, Path.Combine(c, "base"), Path.Combine(_scratch.Path, "cache"),
            GgmlType.F32, new AdapterSpec("a", Path.Combine(c, "adapter"))));
        var options = new PeftHost.Models.Generation.GenerationOptions { MaxNewTokens = 3 };
        _ = vk.Generate([1, 2, 3], options, []).ToList();
        int plain = vk.Model.LastDispatchCount;
        _ = vk.Generate([1, 2, 3], options).ToList();
        int adapted = vk.Model.LastDispatchCount;
        // q, k, v, o in both layers: the fused q|k|v and the output product carry a term each (2 matrices x 2 layers x 2 dispatches).
        Assert.Equal(plain + 8, adapted);
    }
}
