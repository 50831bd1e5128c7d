using System.CommandLine;
using PeftHost.Models;
using PeftHost.Models.Config;

namespace PeftHost.Cli.Commands;

/// <summary>`pefthost make-model --arch llama|bert|gpt2 --size tiny|small|medium --out DIR [--seed N]`: a random-initialised model folder.</summary>
internal static class MakeModelCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "llama | bert | gpt2.", Required = true };
        var size = new Option<string>("--size") { Description = "tiny | small | medium.", DefaultValueFactory = _ => "tiny" };
        var output = new Option<string>("--out") { Description = "Folder to write (config.json + model.safetensors).", Required = true };
        var seed = new Option<long>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 0 };
        var command = new Command("make-model", "Write a random-initialised model folder in Hugging Face's layout.") { arch, size, output, seed };
        command.SetAction(parse =>
        {
            ModelConfig config = ModelPresets.Write(parse.GetValue(arch)!, parse.GetValue(size)!, parse.GetValue(output)!, parse.GetValue(seed));
            Console.WriteLine($"{config.Architecture} ({parse.GetValue(arch)} {parse.GetValue(size)}: vocab {config.VocabSize}, hidden {config.HiddenSize}, {config.NumLayers} layers) -> {parse.GetValue(output)}");
            return 0;
        });
        return command;
    }
}
