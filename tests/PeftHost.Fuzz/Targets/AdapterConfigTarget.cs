using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;
using PeftHost.Abstractions.Tuning;
using PeftHost.Plugins.AdaLora;
using PeftHost.Plugins.BitFit;
using PeftHost.Plugins.Boft;
using PeftHost.Plugins.Bottleneck;
using PeftHost.Plugins.FourierFt;
using PeftHost.Plugins.IA3;
using PeftHost.Plugins.LnTuning;
using PeftHost.Plugins.Loha;
using PeftHost.Plugins.Lokr;
using PeftHost.Plugins.Lora;
using PeftHost.Plugins.Oft;
using PeftHost.Plugins.PromptTuning;
using PeftHost.Plugins.Vera;

namespace PeftHost.Fuzz.Targets;

/// <summary>
/// An adapter_config.json given to every current plugin's <see cref="ITuner.ParseConfig"/>, parsed as the
/// host parses the file (System.Text.Json nodes); an accepted config must survive its own round trip
/// (ToJson parsed again gives the same JSON).
/// </summary>
public sealed class AdapterConfigTarget : FuzzTarget
{
    /// <summary>Every tuner of the plugins in this repository (AdapterConfigTargetTests checks that none is missing).</summary>
    public static IReadOnlyList<ITuner> Tuners { get; } =
    [
        new LoraTuner(), new IA3Tuner(), new AdaLoraTuner(), new PromptTuningTuner(), new PrefixTuningTuner(), new PTuningTuner(),
        new VeraTuner(), new FourierFtTuner(), new LoKrTuner(), new LoHaTuner(), new OftTuner(), new BoftTuner(), new LnTuningTuner(),
        new BottleneckTuner(), new BitFitTuner(),
    ];

    /// <inheritdoc />
    public override string Name => "adapter-config";

    /// <inheritdoc />
    public override string Description => "adapter_config.json through ParseConfig of every plugin's tuner (" + string.Join(", ", Tuners.Select(t => t.PeftType)) + ")";

    /// <inheritdoc />
    protected override void Run(byte[] input)
    {
        JsonObject json;
        try
        {
            // As AdapterFolder reads it: File.ReadAllText (invalid UTF-8 becomes U+FFFD), then JsonNode.Parse.
            json = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(input), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject ?? throw new InvalidDataException("adapter_config.json: not a JSON object.");
            // JsonNode parses lazily: walk it once so duplicate keys surface here, as they do when the host reads the file.
            _ = json.DeepClone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"adapter_config.json: invalid JSON: {e.Message}", e);
        }

        foreach (ITuner tuner in Tuners)
        {
            TunerConfig config;
            try
            {
                config = tuner.ParseConfig((JsonObject)json.DeepClone());
            }
            catch (TunerConfigException e)
            {
                if (!e.Message.Contains("field", StringComparison.Ordinal) && !e.Message.Contains('\''))
                    throw Inconsistent($"{tuner.PeftType}: a TunerConfigException that names no field: \"{e.Message}\"");
                continue;
            }
            string written = config.ToJson().ToJsonString();
            string again = tuner.ParseConfig((JsonObject)JsonNode.Parse(written)!).ToJson().ToJsonString();
            if (written != again)
                throw Inconsistent($"{tuner.PeftType}: the config does not survive its round trip: {written} became {again}");
        }
    }

    /// <inheritdoc />
    protected override bool IsCleanError(Exception e) => e is InvalidDataException;

    /// <inheritdoc />
    protected override bool NamesItsSubject(string message) => message.Contains("adapter_config.json", StringComparison.Ordinal);
}
