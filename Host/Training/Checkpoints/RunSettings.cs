using System.Security.Cryptography;
using System.Text.Json.Nodes;
using PeftHost.Training.Arguments;

namespace PeftHost.Training.Checkpoints;

/// <summary>
/// The settings that change what a run computes (rates, batch sizes, schedule, steps, data, seed, ...),
/// recorded in every checkpoint: a resumed run must have the same ones, or it would not be the run the
/// checkpoint belongs to. Logging, evaluation and saving settings may change.
/// </summary>
public static class RunSettings
{
    /// <summary>The file name in a checkpoint.</summary>
    public const string FileName = "run_settings.json";

    private static readonly string[] Fields =
    [
        "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "lr_scheduler_type", "lr_scheduler_kwargs",
        "warmup_steps", "warmup_ratio", "max_steps", "num_train_epochs", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
        "optim", "max_grad_norm", "seed", "shuffle", "max_length", "packing", "completion_only_loss", "assistant_only_loss", "eval_split",
    ];

    /// <summary>The settings of a run: the training arguments that change it, plus the identity of its data and model.</summary>
    /// <param name="args">The run's arguments.</param>
    /// <param name="identity">What else defines the run (data file hash, base model, adapter config), by name.</param>
    public static JsonObject Of(TrainingArguments args, JsonObject identity)
    {
        JsonObject all = TrainingArgumentsReader.ToJson(args);
        var o = new JsonObject();
        foreach (string f in Fields) o[f] = all[f]?.DeepClone();
        foreach ((string key, JsonNode? value) in identity) o[key] = value?.DeepClone();
        return o;
    }

    /// <summary>The SHA-256 of a file's bytes (how a data file is recognised; its path may change).</summary>
    public static string FileHash(string path)
    {
        using FileStream s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }

    /// <summary>Throws when a setting differs from the checkpoint's, naming it and both values.</summary>
    /// <exception cref="InvalidOperationException">A setting differs.</exception>
    public static void Check(JsonObject current, JsonObject saved, string checkpoint)
    {
        foreach ((string key, JsonNode? value) in current)
        {
            JsonNode? before = saved[key];
            if (JsonNode.DeepEquals(Normal(value), Normal(before))) continue;
            throw new InvalidOperationException($"--resume {checkpoint}: {Describe(key)} is {Shown(value)} in this run but {Shown(before)} in the checkpoint; " +
                "a resumed run must use the settings it was started with (change it back, or start a new run in another --out).");
        }
    }

    private static string Describe(string key) => key switch
    {
        "data_sha256" => "the training data file (its SHA-256)",
        "eval_data_sha256" => "the evaluation data file (its SHA-256)",
        _ => $"setting '{key}'",
    };

    // 2 and 2.0 are the same setting.
    private static JsonNode? Normal(JsonNode? n) =>
        JsonNumber.Is(n) ? JsonValue.Create(JsonNumber.Get(n!)) : n;

    private static string Shown(JsonNode? n) => n is null ? "unset" : n.ToJsonString();
}
