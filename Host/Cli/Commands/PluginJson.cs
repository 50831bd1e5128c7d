using System.Text.Json.Nodes;
using PeftHost.Engine.Plugins;

namespace PeftHost.Cli.Commands;

/// <summary>The JSON shape of a plugin in `plugins --json` and `doctor`.</summary>
internal static class PluginJson
{
    public static JsonArray ToJson(IEnumerable<PluginInfo> plugins)
    {
        var array = new JsonArray();
        foreach (PluginInfo p in plugins)
        {
            var o = new JsonObject
            {
                ["id"] = p.Id,
                ["version"] = p.Version,
                ["status"] = p.Status.ToString().ToLowerInvariant(),
                ["methods"] = new JsonArray([.. p.Methods.Select(m => JsonValue.Create(m))]),
                ["path"] = p.Path,
            };
            if (p.Error is not null) o["error"] = p.Error;
            array.Add(o);
        }
        return array;
    }
}
