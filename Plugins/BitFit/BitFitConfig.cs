using System.Text.Json.Nodes;
using PeftHost.Abstractions.Config;

namespace PeftHost.Plugins.BitFit;

/// <summary>
/// The <c>BITFIT</c> config (docs/methods/bitfit.md): PEFT's common and targeting fields only; a null
/// <c>target_modules</c> means every module with a bias. <c>modules_to_save</c> is read because its modules are
/// never BitFit targets (the host saves their whole trained copies).
/// </summary>
public sealed class BitFitConfig : TargetedTunerConfig
{
    /// <summary>Parses an <c>adapter_config.json</c> object.</summary>
    /// <exception cref="TunerConfigException">A field is invalid; the message names it.</exception>
    public BitFitConfig(JsonObject json) : this(new ConfigFields(json)) { }

    private BitFitConfig(ConfigFields fields) : base(BitFitTuner.PeftTypeName, fields)
    {
        ModulesToSave = fields.GetStringList("modules_to_save");
        UnknownFields = fields.Remaining();
    }

    /// <summary><c>modules_to_save</c>: whole modules trained and saved besides the adapter (by the host), never BitFit targets.</summary>
    public IReadOnlyList<string>? ModulesToSave { get; }

    /// <inheritdoc />
    protected override void WriteTunerFields(JsonObject json) =>
        json["modules_to_save"] = ModulesToSave is null ? null : new JsonArray([.. ModulesToSave.Select(s => JsonValue.Create(s))]);
}
