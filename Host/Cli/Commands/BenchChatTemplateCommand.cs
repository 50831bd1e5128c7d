using System.CommandLine;
using System.Text.Json.Nodes;
using PeftHost.Engine.Inference;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost bench chat-template [--template FILE] [--json]`: parse and render times of a Jinja chat template.</summary>
internal static class BenchChatTemplateCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "End with one JSON object on the last line of stdout." };
        var template = new Option<string>("--template")
        {
            Description = "A chat template file (default: the Llama 3.1 template of the repository's test fixtures).",
            DefaultValueFactory = _ => Path.Combine("tests", "fixtures", "chat_templates", "templates", "llama-3.1-8b-instruct.jinja"),
        };
        var command = new Command("chat-template", "Jinja chat template: parse time, and render time of a system prompt and three turns.") { template, json };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(template)!;
            if (!File.Exists(path)) return CliErrors.Fail($"{path}: no such template file (run from the repository root, or pass --template).");
            var tokens = new Dictionary<string, string> { ["bos_token"] = "<|begin_of_text|>", ["eos_token"] = "<|eot_id|>" };
            ChatTemplateBenchmark.Result r = ChatTemplateBenchmark.Run(File.ReadAllText(path), tokens);
            Console.WriteLine($"template           {path}");
            Console.WriteLine($"parse_us           {r.ParseMicroseconds:F1}   (median; once per template, then cached)");
            Console.WriteLine($"render_median_us   {r.RenderMedianMicroseconds:F1}   (system + 3 turns + generation prompt, {r.PromptChars} chars; target < 1000)");
            Console.WriteLine($"render_p99_us      {r.RenderP99Microseconds:F1}   ({r.Renders} renders)");
            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["template"] = path, ["parse_us"] = Math.Round(r.ParseMicroseconds, 2),
                    ["render_median_us"] = Math.Round(r.RenderMedianMicroseconds, 2), ["render_p99_us"] = Math.Round(r.RenderP99Microseconds, 2),
                    ["prompt_chars"] = r.PromptChars,
                };
                Console.WriteLine(o.ToJsonString());
            }
            return 0;
        });
        return command;
    }
}
