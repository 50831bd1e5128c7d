using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Peft;
using PeftHost.Formats.Safetensors;
using Spectre.Console;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost adapter inspect DIR [--json]`: an adapter folder's config, tensors and parameter count.</summary>
internal static class AdapterCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("DIR") { Description = "A PEFT adapter folder (adapter_config.json + adapter_model.safetensors)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var inspect = new Command("inspect", "Show an adapter's config, its tensors with shapes and dtypes, and its parameter count.") { dir, json };
        inspect.SetAction(parse => Inspect(parse.GetValue(dir)!, parse.GetValue(json)));
        var adapter = new Command("adapter", "Work with PEFT adapter folders.");
        adapter.Subcommands.Add(inspect);
        return adapter;
    }

    private static int Inspect(string dir, bool json)
    {
        string configPath = Path.Combine(dir, AdapterFolder.ConfigFile);
        string weightsPath = Path.Combine(dir, AdapterFolder.WeightsFile);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{Path.GetFullPath(dir)}: no such adapter folder.");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"No {AdapterFolder.ConfigFile} in {Path.GetFullPath(dir)}.", configPath);
        JsonObject config;
        try
        {
            config = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidDataException($"{configPath}: not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath}: not valid JSON: {e.Message}", e);
        }
        SafetensorsFile weights = SafetensorsFile.Open(weightsPath);
        using (weights)
        {
            long parameters = weights.Tensors.Sum(t => t.ElementCount);
            if (json)
            {
                var tensors = new JsonObject();
                foreach (SafetensorsTensorInfo t in weights.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
                    tensors[t.Name] = new JsonObject { ["dtype"] = t.DType.Name(), ["shape"] = new JsonArray([.. t.Shape.Select(d => JsonValue.Create(d))]) };
                var o = new JsonObject { ["path"] = Path.GetFullPath(dir), ["config"] = config.DeepClone(), ["tensors"] = tensors, ["parameters"] = parameters };
                Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
                return 0;
            }
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(Path.GetFullPath(dir))}[/]: {Markup.Escape(config["peft_type"]?.ToString() ?? "?")}, {weights.Tensors.Count} tensors, {parameters:N0} parameters");
            var cfg = new Table().AddColumns("field", "value");
            foreach ((string key, JsonNode? value) in config.OrderBy(p => p.Key, StringComparer.Ordinal))
                cfg.AddRow(Markup.Escape(key), Markup.Escape(value?.ToJsonString() ?? "null"));
            AnsiConsole.Write(cfg);
            var table = new Table().AddColumns("tensor", "dtype", "shape");
            foreach (SafetensorsTensorInfo t in weights.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
                table.AddRow(Markup.Escape(t.Name), t.DType.Name(), t.ShapeText);
            AnsiConsole.Write(table);
            return 0;
        }
    }
}
