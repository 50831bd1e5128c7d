using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Engine.Plugins;
using PeftHost.Engine.Runtime;
using TorchSharp;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost doctor [--json]`: what this installation has and whether it works.</summary>
internal static class DoctorCommand
{
    public static Command Create(Option<string> pluginsOption)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("doctor", "Check the .NET runtime, TorchSharp (and its native fix), devices, Vulkan, llama.cpp's native library and plugins.") { json };
        command.SetAction(parse =>
        {
            JsonObject report = Build(parse.GetValue(pluginsOption)!);
            Console.WriteLine(report.ToJsonString(new JsonSerializerOptions { WriteIndented = !parse.GetValue(json) }));
            return 0;
        });
        return command;
    }

    private static JsonObject Build(string pluginsDir)
    {
        string fix = NativeFixStatus.Check(AppContext.BaseDirectory, out string fixDetail);
        var torchJson = new JsonObject
        {
            ["version"] = BuildInfo.TorchSharpVersion,
            ["backend"] = BuildInfo.TorchBackend,
            ["native_fix"] = fix,
            ["native_fix_detail"] = fixDetail,
            ["mkl_vendor_shim"] = TorchCpuMath.Status,
        };
        var devices = new JsonArray();
        try
        {
            using var probe = torch.ones(2) + 1; // the first native call: fails here if libtorch cannot load
            torchJson["loads"] = true;
            foreach (string d in TorchDevice.Available()) devices.Add(d);
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or ExternalException)
        {
            torchJson["loads"] = false;
            torchJson["error"] = (e.InnerException ?? e).Message;
        }

        var report = new JsonObject
        {
            ["dotnet"] = new JsonObject { ["version"] = Environment.Version.ToString(), ["runtime"] = RuntimeInformation.FrameworkDescription, ["rid"] = RuntimeInformation.RuntimeIdentifier },
            ["torchsharp"] = torchJson,
            ["devices"] = devices,
            ["vulkan"] = VulkanDoctorJson.Build(),
            ["llama_cpp"] = LlamaDoctorJson.Build(),
            ["plugins_dir"] = Path.GetFullPath(pluginsDir),
        };
        try
        {
            using var catalog = new PluginCatalog(new PluginCatalogOptions { PluginsDirectory = pluginsDir });
            catalog.Scan();
            report["plugins"] = PluginJson.ToJson(catalog.Plugins);
        }
        catch (Exception e) when (e is DirectoryNotFoundException or UnauthorizedAccessException or IOException)
        {
            report["plugins"] = new JsonArray();
            report["plugins_error"] = e.Message;
        }
        return report;
    }
}
