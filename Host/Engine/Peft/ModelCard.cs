using System.Text;

namespace PeftHost.Engine.Peft;

/// <summary>
/// The model card PEFT's save_pretrained writes beside an adapter (README.md): YAML front matter with
/// base_model and library_name, then the Hugging Face model-card sections, with what PeftHost knows filled in.
/// Written by <see cref="PeftModel.SavePretrained(string, IReadOnlyList{string}?, AdapterSaveOptions?)"/> when asked.
/// </summary>
public static class ModelCard
{
    /// <summary>The card's file name (PEFT's create_or_update_model_card writes it at the root of the save folder).</summary>
    public const string FileName = "README.md";

    /// <summary>The card's text.</summary>
    /// <param name="baseModel">base_model_name_or_path.</param>
    /// <param name="peftType">The adapters' method (several joined by ", ").</param>
    /// <param name="training">Lines describing the training run (hyper-parameters, results), or none.</param>
    public static string Text(string? baseModel, string peftType, IReadOnlyList<string> training)
    {
        var b = new StringBuilder();
        b.Append("---\n");
        if (baseModel is not null) b.Append("base_model: ").Append(baseModel).Append('\n');
        b.Append("library_name: peft\n---\n\n");
        b.Append("# Model Card for Model ID\n\n");
        string article = "AEIOU".Contains(char.ToUpperInvariant(peftType.FirstOrDefault('x'))) ? "An" : "A";
        b.Append($"{article} {peftType} adapter trained with PeftHost (a C# engine with Hugging Face PEFT's formats).\n\n");
        b.Append("## Model Details\n\n### Model Description\n\n");
        b.Append($"- **Model type:** {peftType} adapter\n");
        b.Append($"- **Finetuned from model [optional]:** {baseModel ?? "[More Information Needed]"}\n\n");
        b.Append("## Uses\n\n### Direct Use\n\nLoad it with PEFT (`PeftModel.from_pretrained(base, path)`) or PeftHost (`PeftModel.LoadAdapter`).\n\n");
        b.Append("## Training Details\n\n### Training Procedure\n\n#### Training Hyperparameters\n\n");
        if (training.Count == 0) b.Append("[More Information Needed]\n");
        foreach (string line in training) b.Append("- ").Append(line).Append('\n');
        b.Append("\n### Framework versions\n\n- PEFT format 0.13.2\n");
        return b.ToString();
    }
}
