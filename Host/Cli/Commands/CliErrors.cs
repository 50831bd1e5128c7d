using PeftHost.Engine.Plugins;
using PeftHost.Formats.Gguf;
using PeftHost.Llama.Runtime;
using PeftHost.Tokenizers;
using PeftHost.Vulkan.Runtime;

namespace PeftHost.Cli.Commands;

/// <summary>The errors the commands report as one line (exit code 1) rather than a stack trace.</summary>
internal static class CliErrors
{
    public static bool IsUserError(Exception e) => e is ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
        or NotSupportedException or KeyNotFoundException or PluginFaultException or PeftHost.Abstractions.Config.TunerConfigException
        or GgufFormatException or VulkanException or InvalidOperationException or FormatException or LlamaCppException
        or TokenizerLoadException or ChatTemplateException;

    public static int Fail(string message)
    {
        Console.Error.WriteLine("error: " + message);
        return 1;
    }
}
