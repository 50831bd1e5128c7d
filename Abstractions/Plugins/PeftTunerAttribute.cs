namespace PeftHost.Abstractions.Plugins;

/// <summary>
/// Declares one tuner a plugin exports and the <c>peft_type</c> it serves (e.g. "LORA"). A plugin
/// may export several. The host reads these from metadata (to detect two plugins claiming one
/// <c>peft_type</c> before loading either), then creates the type, which must implement
/// <see cref="Tuning.ITuner"/> and have a public parameterless constructor.
/// </summary>
/// <param name="peftType">The <c>peft_type</c> string, as in PEFT's <c>adapter_config.json</c>.</param>
/// <param name="tunerType">The class implementing <see cref="Tuning.ITuner"/>.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class PeftTunerAttribute(string peftType, Type tunerType) : Attribute
{
    /// <summary>The <c>peft_type</c> served.</summary>
    public string PeftType { get; } = peftType;

    /// <summary>The tuner class.</summary>
    public Type TunerType { get; } = tunerType;
}
