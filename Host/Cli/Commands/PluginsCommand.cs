using System.CommandLine;
using System.Text.Json;
using PeftHost.Engine.Plugins;
using Spectre.Console;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost plugins [--json]`: every plugin file found and whether it loaded.</summary>
internal static class PluginsCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON array (one object per plugin file) on stdout." };
        var command = new Command("plugins", "List the plugins found in the plugins folder and their status.") { json };
        command.SetAction(parse =>
        {
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = parse.GetValue(pluginsOption)! });
            catalog.Scan(); // a missing folder: DirectoryNotFoundException (exit 2), an unreadable one: exit 1
            if (parse.GetValue(json))
            {
                Console.WriteLine(PluginJson.ToJson(catalog.Plugins).ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
                return 0;
            }
            var table = new Table().AddColumns("id", "version", "status", "methods", "path / error");
            foreach (PluginInfo p in catalog.Plugins)
                table.AddRow(Markup.Escape(p.Id), Markup.Escape(p.Version ?? "-"), p.Status == PluginStatus.Loaded ? "[green]loaded[/]" : $"[red]{p.Status.ToString().ToLowerInvariant()}[/]",
                    Markup.Escape(string.Join(", ", p.Methods)), Markup.Escape(p.Error ?? p.Path));
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
