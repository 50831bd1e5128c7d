using System.Text.Json.Nodes;
using PeftHost.Models;
using PeftHost.Models.Config;
using PeftHost.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace PeftHost.Tests.Models;

/// <summary>Helpers: model folders made from the conformance configs with changes.</summary>
internal static class ModelFolders
{
    public static JsonObject LlamaConfig(Action<JsonObject>? change = null)
    {
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Conformance.Case("base_llama"), "config.json")))!;
        change?.Invoke(json);
        return json;
    }

    /// <summary>A random-initialised model of a config, saved to <paramref name="folder"/> and returned.</summary>
    public static nn.Module Random(JsonObject config, string folder, long seed = 7)
    {
        ModelConfig c = ModelConfigReader.Parse(config);
        torch.manual_seed(seed);
        nn.Module model = ModelFactory.Create(c);
        using (no_grad())
            foreach ((string name, var p) in model.named_parameters())
                if (name.EndsWith(".bias", StringComparison.Ordinal)) p.normal_(0, 0.5); // non-zero biases, so they matter
        model.eval();
        ModelFactory.Save(model, c, folder);
        return model;
    }

    public static Tensor Ids(long[,] ids) => torch.tensor(ids);
}
