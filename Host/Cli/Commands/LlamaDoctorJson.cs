using System.Text.Json.Nodes;
using PeftHost.Llama.Runtime;

namespace PeftHost.Cli.Commands;

/// <summary>The "llama_cpp" section of `pefthost doctor --json`: whether llama.cpp's native library loads, which build, or why not.</summary>
internal static class LlamaDoctorJson
{
    public static JsonObject Build()
    {
        var result = new JsonObject
        {
            ["native_folder"] = LlamaCppRuntime.NativeFolder,
            ["native_folder_exists"] = Directory.Exists(LlamaCppRuntime.NativeFolder),
            ["cpu_features"] = LlamaCppRuntime.CpuFeatures,
        };
        try
        {
            result["build"] = LlamaCppRuntime.EnsureLoaded();
            result["loads"] = true;
            result["system_info"] = LlamaCppRuntime.SystemInfo();
        }
        catch (LlamaCppException e)
        {
            result["loads"] = false;
            result["error"] = e.Message;
        }
        return result;
    }
}
