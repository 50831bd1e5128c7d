using System.Text.Json.Nodes;

namespace PeftHost.Tests.Support;

/// <summary>Adapter configs used across tests.</summary>
internal static class Configs
{
    /// <summary>LoRA with init_lora_weights=false: B is not zero, so the adapter changes the output.</summary>
    public static JsonObject Lora(params string[] targets) => new()
    {
        ["peft_type"] = "LORA", ["r"] = 2, ["lora_alpha"] = 4,
        ["target_modules"] = new JsonArray([.. targets.Select(t => JsonValue.Create(t))]),
        ["init_lora_weights"] = false,
    };

    public static JsonObject Faulty(string failOn = "none", string? note = null) => new()
    {
        ["peft_type"] = "FAULTY", ["target_modules"] = new JsonArray("q_proj", "v_proj"),
        ["init_scale"] = 1.5, ["fail_on"] = failOn, ["note"] = note,
    };
}
