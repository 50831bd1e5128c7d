namespace PeftHost.Engine.Peft;

/// <summary>
/// What <see cref="PeftModel.SavePretrained(string, IReadOnlyList{string}?, AdapterSaveOptions?)"/> adds to the
/// adapter files, as PEFT's <c>save_pretrained</c> does: the base model's name in each config and a model card.
/// </summary>
public sealed record AdapterSaveOptions
{
    /// <summary>
    /// Recorded as <c>base_model_name_or_path</c> in every saved config (PEFT records the base model's
    /// <c>name_or_path</c>), so that PEFT's <c>AutoPeftModelForCausalLM</c> finds the base. It replaces what a
    /// loaded config held: the adapters now sit on this base, and a recorded path may be relative or stale.
    /// Null: the configs keep what they hold.
    /// </summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>Write PEFT's model card, <c>README.md</c>, at the root of the save folder (PEFT's <c>create_or_update_model_card</c>).</summary>
    public bool WriteModelCard { get; init; }

    /// <summary>Lines for the card's training section (hyper-parameters, results); none gives "[More Information Needed]".</summary>
    public IReadOnlyList<string> TrainingDetails { get; init; } = [];
}
