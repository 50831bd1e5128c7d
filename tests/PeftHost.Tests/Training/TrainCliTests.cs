using System.Diagnostics;
using System.Text.Json.Nodes;
using PeftHost.Tests.Support;
using PeftHost.Training.Checkpoints;
using Xunit;

namespace PeftHost.Tests.Training;

/// <summary>
/// `pefthost train` as a user runs it: a SIGKILL at any moment (also while a checkpoint is being
/// written) leaves a folder --resume continues from, bitwise to the uninterrupted run; Ctrl+C saves a
/// checkpoint and exits with 130; config and data errors are one line naming what is wrong.
/// </summary>
public sealed class TrainCliTests : IDisposable
{
    private readonly ScratchFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    private static string[] TrainArgs(string output, params string[] extra) =>
    [
        "train", "--model", TrainingCase.BaseFolder, "--data", TrainingCase.DataFile,
        "--init-adapter", Path.Combine(TrainingCase.Root, "trainer", "initial_adapter"), "--out", output, "--threads", "1",
        "--set", "max_steps=40", "--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1", "--set", "learning_rate=1e-3",
        "--set", "logging_steps=1", "--set", "save_steps=1", "--set", "save_total_limit=3", "--set", "warmup_steps=5", .. extra,
    ];

    [Fact]
    public void Sigkill_at_any_moment_leaves_a_folder_that_resumes_bitwise()
    {
        string reference = Path.Combine(_dir.Path, "reference");
        (int code, string stdout, string stderr) = Cli.Run(TrainArgs(reference));
        Assert.True(code == 0, stderr + stdout);
        // The output folder: the adapter records its base (for AutoPeftModel) and has PEFT's model card; the curves are a PNG.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(reference, "adapter_config.json")))!;
        Assert.Equal(Path.GetFullPath(TrainingCase.BaseFolder), config["base_model_name_or_path"]!.GetValue<string>());
        string[] card = File.ReadAllLines(Path.Combine(reference, "README.md"));
        Assert.Equal(["---", "base_model: " + Path.GetFullPath(TrainingCase.BaseFolder), "library_name: peft", "---"], card[..4]);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(reference, "training_curves.png"))[..4]);
        Assert.Contains("\"global_step\": 40", File.ReadAllText(Path.Combine(reference, "trainer_state.json")));

        string output = Path.Combine(_dir.Path, "killed");
        foreach (int killAfter in new[] { 3, 11, 19, 26 })
        {
            bool any = Directory.Exists(output) && CheckpointFolder.List(output).Count > 0;
            using Process p = Start(any ? [.. TrainArgs(output), "--resume"] : TrainArgs(output));
            // The step line is printed just before that step's checkpoint is written: kill into the save.
            WaitForLine(p, $"step {killAfter}/40");
            p.Kill();
            p.WaitForExit();
            foreach (string checkpoint in CheckpointFolder.List(output))
                foreach (string file in new[] { "adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors", "trainer_state.json", RunSettings.FileName, TrainingPosition.FileName, RngState.FileName })
                    Assert.True(File.Exists(Path.Combine(checkpoint, file)), $"{checkpoint} lacks {file}: a checkpoint folder must be complete or absent");
        }
        (code, stdout, stderr) = Cli.Run([.. TrainArgs(output), "--resume"]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(output, "adapter_model.safetensors")));
        Assert.Equal(Losses(reference), Losses(output));
        Assert.Empty(Directory.GetDirectories(output, ".tmp-*"));
    }

    [Fact]
    public void Ctrl_c_saves_a_checkpoint_and_exits_130_and_resume_finishes_the_same_run()
    {
        string reference = Path.Combine(_dir.Path, "reference");
        Assert.Equal(0, Cli.Run(TrainArgs(reference, "--set", "save_steps=1000", "--set", "max_steps=300")).ExitCode);

        string output = Path.Combine(_dir.Path, "interrupted");
        // As from a terminal: a runner started in the background hands its children SIGINT ignored, which `env` undoes.
        using (Process p = Start(TrainArgs(output, "--set", "save_steps=1000", "--set", "max_steps=300"), defaultSigint: true))
        {
            WaitForLine(p, "step 5/300");
            using (Process kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.True(p.WaitForExit(Limit), "pefthost did not stop after Ctrl+C");
            Assert.Equal(130, p.ExitCode);
            Assert.Contains("interrupted at step", p.StandardError.ReadToEnd());
        }
        string checkpoint = CheckpointFolder.Latest(output);
        int step = CheckpointFolder.StepOf(checkpoint)!.Value;
        Assert.InRange(step, 5, 299);
        (int code, string stdout, string stderr) = Cli.Run([.. TrainArgs(output, "--set", "save_steps=1000", "--set", "max_steps=300"), "--resume", checkpoint]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(output, "adapter_model.safetensors")));
        Assert.Equal(Losses(reference), Losses(output));
    }

    [Fact]
    public void Config_and_data_errors_are_one_line_naming_the_problem()
    {
        string output = Path.Combine(_dir.Path, "errors");
        (int code, _, string stderr) = Cli.Run(TrainArgs(output, "--set", "lerning_rate=1"));
        Assert.Equal(2, code); // input errors (the exit-code table)
        Assert.Contains("unknown field 'lerning_rate' (did you mean 'learning_rate'?)", stderr);

        (code, _, stderr) = Cli.Run(TrainArgs(output, "--set", "fp16=true"));
        Assert.Equal(2, code);
        Assert.Contains("field 'fp16' is a Hugging Face training argument that PeftHost does not support (training runs in float32)", stderr);

        string bad = Path.Combine(_dir.Path, "bad.jsonl");
        File.WriteAllLines(bad, ["{\"input_ids\": [1, 2, 3]}", "{\"input_ids\": [1, 2, 300]}"]);
        string[] args = TrainArgs(output);
        args[Array.IndexOf(args, TrainingCase.DataFile)] = bad;
        (code, _, stderr) = Cli.Run(args);
        Assert.Equal(2, code);
        Assert.Contains($"{bad}: line 2, field 'input_ids': entry 2 is 300, outside the model's vocabulary [0, 128).", stderr);
        Assert.False(Directory.Exists(Path.Combine(output, "checkpoint-1")), "nothing is trained on malformed data");

        (code, _, stderr) = Cli.Run([.. TrainArgs(Path.Combine(_dir.Path, "empty")), "--resume"]);
        Assert.Equal(2, code);
        Assert.Contains("holds no checkpoint-<step> folder to resume from", stderr);
    }

    private static List<string> Losses(string output) =>
        [.. File.ReadAllLines(Path.Combine(output, "train_log.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).Where(e => e.ContainsKey("loss"))
            .Select(e => $"{e["step"]} {e["loss"]!.ToJsonString()} {e["learning_rate"]!.ToJsonString()} {e["grad_norm"]!.ToJsonString()}")];

    private static Process Start(string[] args, bool defaultSigint = false)
    {
        var psi = new ProcessStartInfo(defaultSigint ? "env" : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (defaultSigint)
        {
            psi.ArgumentList.Add("--default-signal=INT");
            psi.ArgumentList.Add("dotnet");
        }
        psi.ArgumentList.Add(Cli.Dll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static void WaitForLine(Process p, string start)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Limit)
        {
            string? line = p.StandardOutput.ReadLine();
            if (line is null) throw new InvalidOperationException($"pefthost ended before printing '{start}' (exit {(p.WaitForExit(5000) ? p.ExitCode : -1)}): {p.StandardError.ReadToEnd()}");
            if (line.StartsWith(start, StringComparison.Ordinal)) return;
        }
        throw new TimeoutException($"no '{start}' line within {Limit}");
    }
}
