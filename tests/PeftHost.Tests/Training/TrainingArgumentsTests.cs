using System.Text.Json.Nodes;
using PeftHost.Tests.Support;
using PeftHost.Training.Arguments;
using PeftHost.Training.Optimization;
using Xunit;

namespace PeftHost.Tests.Training;

/// <summary>Settings by Hugging Face's names: defaults as transformers', files, overrides, and the errors users see.</summary>
public sealed class TrainingArgumentsTests
{
    [Fact]
    public void Defaults_are_transformers_defaults()
    {
        // defaults.json: transformers.TrainingArguments' field defaults (tools/training-reference/make_schedule_cases.py).
        var expected = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(TrainingCase.Root, "defaults.json")))!;
        JsonObject ours = TrainingArgumentsReader.ToJson(TrainingArgumentsReader.Parse([], "test"));
        foreach ((string key, JsonNode? value) in expected)
            Assert.True(JsonNode.DeepEquals(Normal(value), Normal(ours[key])), $"{key}: transformers {value?.ToJsonString() ?? "null"}, ours {ours[key]?.ToJsonString() ?? "null"}");
        // TRL's SFTConfig defaults.
        Assert.Equal(1024, JsonNumberOf(ours["max_length"]));
        Assert.False(ours["packing"]!.GetValue<bool>());
        Assert.True(ours["completion_only_loss"]!.GetValue<bool>());
        Assert.False(ours["assistant_only_loss"]!.GetValue<bool>());
    }

    [Fact]
    public void Unknown_fields_are_named_with_a_suggestion()
    {
        var e = Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { ["lerning_rate"] = 1e-4 }, "cfg.json"));
        Assert.Equal("cfg.json: unknown field 'lerning_rate' (did you mean 'learning_rate'?).", e.Message);
        e = Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { ["banana"] = 1 }, "cfg.json"));
        Assert.Equal("cfg.json: unknown field 'banana'.", e.Message);
    }

    [Theory]
    [InlineData("fp16", "training runs in float32")]
    [InlineData("deepspeed", "does not support")]
    [InlineData("evaluation_strategy", "use eval_strategy")]
    [InlineData("dataset_text_field", "does not support")]
    public void Known_but_unsupported_fields_say_so(string field, string hint)
    {
        var e = Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { [field] = true }, "cfg.json"));
        Assert.Contains($"field '{field}' is a Hugging Face training argument that PeftHost does not support", e.Message);
        Assert.Contains(hint, e.Message);
    }

    [Theory]
    [InlineData("learning_rate", "\"fast\"", "field 'learning_rate' must be a number, got \"fast\"")]
    [InlineData("per_device_train_batch_size", "0", "must be a positive integer, got 0")]
    [InlineData("gradient_accumulation_steps", "1.5", "must be an integer, got 1.5")]
    [InlineData("optim", "\"sgd\"", "must be one of \"adamw_torch\"; got \"sgd\"")]
    [InlineData("lr_scheduler_type", "\"step\"", "must be one of \"linear\"")]
    [InlineData("eval_strategy", "\"sometimes\"", "must be one of \"no\", \"steps\", \"epoch\"")]
    [InlineData("max_steps", "0", "must be positive, or -1")]
    public void Bad_values_name_the_field_and_what_was_expected(string field, string json, string message)
    {
        var e = Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { [field] = JsonNode.Parse(json) }, "cfg.json"));
        Assert.Contains(message, e.Message);
        Assert.StartsWith("cfg.json:", e.Message);
    }

    [Fact]
    public void Yaml_and_json_files_and_set_overrides_bind_the_same_fields()
    {
        using var dir = new ScratchFolder();
        string yaml = Path.Combine(dir.Path, "t.yaml");
        File.WriteAllText(yaml, "learning_rate: 2e-4\nper_device_train_batch_size: 4\nlr_scheduler_type: cosine\nlr_scheduler_kwargs:\n  num_cycles: 1.5\nshuffle: false\nmax_seq_length: 256\nmetric_for_best_model: \"accuracy\"\n");
        JsonObject config = TrainingArgumentsReader.ApplyOverrides(TrainingArgumentsReader.ReadFile(yaml), ["max_steps=7", "seed=3", "output_dir=out/run", "warmup_ratio=0.1"]);
        TrainingArguments a = TrainingArgumentsReader.Parse(config, yaml);
        Assert.Equal(2e-4, a.LearningRate);
        Assert.Equal(4, a.PerDeviceTrainBatchSize);
        Assert.Equal("cosine", a.LrSchedulerType);
        Assert.Equal(1.5, JsonNumberOf(a.LrSchedulerKwargs["num_cycles"]));
        Assert.False(a.Shuffle);
        Assert.Equal(256, a.MaxLength);
        Assert.Equal("accuracy", a.MetricForBestModel);
        Assert.Equal(7, a.MaxSteps);
        Assert.Equal(3, a.Seed);
        Assert.Equal("out/run", a.OutputDir); // not JSON: read as a string
        Assert.Equal(0.1, a.WarmupRatio);

        string json = Path.Combine(dir.Path, "t.json");
        File.WriteAllText(json, "{\"learning_rate\": \"2e-4\", \"gradient_checkpointing\": true}");
        TrainingArguments b = TrainingArgumentsReader.Parse(TrainingArgumentsReader.ReadFile(json), json);
        Assert.Equal(2e-4, b.LearningRate);
        Assert.True(b.GradientCheckpointing);
    }

    [Fact]
    public void Malformed_files_and_overrides_are_errors()
    {
        using var dir = new ScratchFolder();
        string json = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(json, "{\"learning_rate\": ");
        Assert.Contains("bad.json: invalid JSON", Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.ReadFile(json)).Message);
        string yaml = Path.Combine(dir.Path, "bad.yaml");
        File.WriteAllText(yaml, "learning_rate: [1, 2\n");
        Assert.Contains("bad.yaml: invalid YAML", Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.ReadFile(yaml)).Message);
        Assert.Contains("expected field=value", Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.ApplyOverrides([], ["learning_rate"])).Message);
        Assert.Contains("lr_scheduler_kwargs.power is not an argument of the cosine schedule",
            Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { ["lr_scheduler_type"] = "cosine", ["lr_scheduler_kwargs"] = new JsonObject { ["power"] = 2 } }, "c")).Message);
        Assert.Contains("load_best_model_at_end needs save_strategy and eval_strategy to match",
            Assert.Throws<TrainingArgumentsException>(() => TrainingArgumentsReader.Parse(new JsonObject { ["load_best_model_at_end"] = true, ["eval_strategy"] = "epoch" }, "c")).Message);
    }

    [Fact]
    public void Every_schedule_gives_transformers_rates()
    {
        // schedules.json: get_scheduler(...) over torch's AdamW, get_last_lr() after each scheduler step.
        var cases = (JsonArray)JsonNode.Parse(File.ReadAllText(Path.Combine(TrainingCase.Root, "schedules.json")))!;
        foreach (JsonObject c in cases.Cast<JsonObject>())
        {
            var config = new JsonObject
            {
                ["lr_scheduler_type"] = c["lr_scheduler_type"]!.DeepClone(), ["lr_scheduler_kwargs"] = c["lr_scheduler_kwargs"]!.DeepClone(),
                ["learning_rate"] = c["learning_rate"]!.DeepClone(), ["warmup_steps"] = c["warmup_steps"]!.DeepClone(),
            };
            var schedule = LearningRateSchedule.Create(TrainingArgumentsReader.Parse(config, "schedules.json"), c["num_training_steps"]!.GetValue<int>());
            var rates = ((JsonArray)c["rates"]!).Select(r => r!.GetValue<double>()).ToList();
            for (int step = 0; step < rates.Count; step++)
                Assert.True(Math.Abs(rates[step] - schedule.RateAt(step)) < 1e-12,
                    $"{c["lr_scheduler_type"]} {c["lr_scheduler_kwargs"]!.ToJsonString()} after {step} steps: transformers {rates[step]}, ours {schedule.RateAt(step)}");
        }
    }

    private static double JsonNumberOf(JsonNode? n) => double.Parse(n!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    private static JsonNode? Normal(JsonNode? n) => n is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number ? JsonValue.Create(JsonNumberOf(n)) : n;
}
