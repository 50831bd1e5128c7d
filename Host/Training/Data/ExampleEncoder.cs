using System.Text.Json;
using System.Text.Json.Nodes;
using PeftHost.Tokenizers;

namespace PeftHost.Training.Data;

/// <summary>
/// Turns a dataset row into a <see cref="TrainingExample"/>, recognising it by its fields as TRL's
/// SFTTrainer does: <c>input_ids</c> (pre-tokenised, optional <c>labels</c> / <c>attention_mask</c>),
/// <c>messages</c> (chat, the model's chat template), <c>prompt</c> + <c>completion</c>, <c>text</c>;
/// for classification <c>text</c> (or <c>input_ids</c>) + <c>label</c>. Examples are truncated to max_length.
/// </summary>
public sealed class ExampleEncoder
{
    private readonly Func<ITextTokenizer> _tokenizer;
    private ITextTokenizer? _loaded;

    /// <summary>An encoder for one task.</summary>
    /// <param name="task">Causal LM or classification.</param>
    /// <param name="tokenizer">Loads the model's tokenizer when a row needs one (text rows).</param>
    /// <param name="vocabSize">Ids must be below it.</param>
    /// <param name="maxLength">Truncation length.</param>
    /// <param name="completionOnlyLoss">TRL's completion_only_loss.</param>
    /// <param name="assistantOnlyLoss">TRL's assistant_only_loss.</param>
    /// <param name="numLabels">Classification: the number of labels (1 = regression).</param>
    /// <param name="label2Id">Classification: config.json's label2id.</param>
    public ExampleEncoder(TaskKind task, Func<ITextTokenizer> tokenizer, int vocabSize, int maxLength, bool completionOnlyLoss, bool assistantOnlyLoss,
        int numLabels = 0, IReadOnlyDictionary<string, int>? label2Id = null)
    {
        Task = task;
        _tokenizer = tokenizer;
        VocabSize = vocabSize;
        MaxLength = maxLength;
        CompletionOnlyLoss = completionOnlyLoss;
        AssistantOnlyLoss = assistantOnlyLoss;
        NumLabels = numLabels;
        Label2Id = label2Id ?? new Dictionary<string, int>();
    }

    /// <summary>The task.</summary>
    public TaskKind Task { get; }

    /// <summary>The model's vocabulary size.</summary>
    public int VocabSize { get; }

    /// <summary>Truncation length.</summary>
    public int MaxLength { get; }

    /// <summary>TRL's completion_only_loss.</summary>
    public bool CompletionOnlyLoss { get; }

    /// <summary>TRL's assistant_only_loss.</summary>
    public bool AssistantOnlyLoss { get; }

    /// <summary>Classification labels (1 = regression).</summary>
    public int NumLabels { get; }

    /// <summary>Label names to ids.</summary>
    public IReadOnlyDictionary<string, int> Label2Id { get; }

    private ITextTokenizer Tokenizer => _loaded ??= _tokenizer();

    /// <summary>Encodes one row.</summary>
    /// <exception cref="DataFormatException">The row has no recognised shape or a field is malformed.</exception>
    public TrainingExample Encode(DatasetRow row)
    {
        JsonObject f = row.Fields;
        string source = $"{row.File}:{row.Line}";
        TrainingExample example;
        if (Task == TaskKind.SequenceClassification)
        {
            if (!f.ContainsKey("label")) throw Error(row, "label", $"a classification row needs 'label' (an integer{(Label2Id.Count > 0 ? " or a name from label2id" : "")}); found fields: {Fields(f)}.");
            int[] ids = f.ContainsKey("input_ids") ? Ids(row, "input_ids") : Tokenize(row, String(row, "text"), addSpecial: true);
            example = NumLabels == 1
                ? new TrainingExample { InputIds = ids, Target = (float)Number(row, "label"), Source = source }
                : new TrainingExample { InputIds = ids, ClassLabel = ClassIndex(row), Source = source };
            if (f.ContainsKey("attention_mask")) example = example with { AttentionMask = Mask(row, ids.Length) };
        }
        else if (f.ContainsKey("input_ids")) example = PreTokenised(row, source);
        else if (f.ContainsKey("messages")) example = Chat(row, source);
        else if (f.ContainsKey("prompt") || f.ContainsKey("completion")) example = PromptCompletion(row, source);
        else if (f.ContainsKey("text")) example = Text(row, source);
        else
            throw Error(row, null, $"no recognised fields (found: {Fields(f)}); a row has 'text', 'prompt' + 'completion', 'messages', or 'input_ids' (with optional 'labels', 'attention_mask').");
        if (example.InputIds.Length == 0) throw Error(row, null, "the example has no tokens.");
        return Truncate(example);
    }

    private TrainingExample Truncate(TrainingExample e)
    {
        if (e.InputIds.Length <= MaxLength) return e;
        return e with
        {
            InputIds = e.InputIds[..MaxLength],
            Labels = e.Labels?[..MaxLength],
            AttentionMask = e.AttentionMask?[..MaxLength],
            PromptLength = e.PromptLength is int p ? Math.Min(p, MaxLength) : null,
        };
    }

    private TrainingExample PreTokenised(DatasetRow row, string source)
    {
        int[] ids = Ids(row, "input_ids");
        int[] labels = ids;
        if (row.Fields.ContainsKey("labels"))
        {
            labels = Ints(row, "labels", allowIgnore: true);
            if (labels.Length != ids.Length) throw Error(row, "labels", $"has {labels.Length} entries, input_ids {ids.Length}; they must be the same length.");
        }
        int[]? mask = row.Fields.ContainsKey("attention_mask") ? Mask(row, ids.Length) : null;
        if (mask is not null && labels == ids) labels = [.. ids.Select((id, i) => mask[i] == 0 ? TrainingExample.IgnoreIndex : id)];
        return new TrainingExample { InputIds = ids, Labels = labels, AttentionMask = mask, Source = source };
    }

    private TrainingExample Text(DatasetRow row, string source)
    {
        int[] ids = WithEos(Tokenize(row, String(row, "text"), addSpecial: true));
        return new TrainingExample { InputIds = ids, Labels = ids, Source = source };
    }

    private TrainingExample PromptCompletion(DatasetRow row, string source)
    {
        string prompt = String(row, "prompt"), completion = String(row, "completion");
        int[] p = Tokenize(row, prompt, addSpecial: true);
        int[] c = WithEos(Tokenize(row, completion, addSpecial: false));
        int[] ids = [.. p, .. c];
        int[] labels = CompletionOnlyLoss ? [.. Enumerable.Repeat(TrainingExample.IgnoreIndex, p.Length), .. c] : ids;
        return new TrainingExample { InputIds = ids, Labels = labels, PromptLength = p.Length, Reference = completion, Source = source };
    }

    private TrainingExample Chat(DatasetRow row, string source)
    {
        if (row.Fields["messages"] is not JsonArray list || list.Count == 0)
            throw Error(row, "messages", "must be a non-empty list of {\"role\", \"content\"} objects.");
        var messages = new List<ChatMessage>();
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m || m["role"] is not JsonValue r || !r.TryGetValue(out string? role) || m["content"] is not JsonValue c || !c.TryGetValue(out string? content))
                throw Error(row, $"messages[{i}]", "must be an object with string 'role' and 'content'.");
            if (role is not ("system" or "user" or "assistant" or "tool"))
                throw Error(row, $"messages[{i}].role", $"'{role}' is not one of system, user, assistant, tool.");
            messages.Add(new ChatMessage(role, content));
        }
        ChatTemplate template = Tokenizer.ChatTemplate
            ?? throw Error(row, "messages", "chat rows need the model's chat template, and its tokenizer_config.json has no chat_template.");
        string full = Render(row, template, messages, false);
        if (!AssistantOnlyLoss)
        {
            int[] all = Tokenize(row, full, addSpecial: false);
            return new TrainingExample { InputIds = all, Labels = all, Source = source };
        }

        // Each assistant turn is the text between the conversation up to it (with the generation
        // prompt) and the conversation through it; the template must render turns as prefixes.
        var spans = new List<(int Start, int End)>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant") continue;
            string before = Render(row, template, messages.Take(i).ToList(), true);
            string through = Render(row, template, messages.Take(i + 1).ToList(), false);
            if (!through.StartsWith(before, StringComparison.Ordinal) || !full.StartsWith(through, StringComparison.Ordinal))
                throw Error(row, "messages", "the chat template does not render the conversation turn by turn (each prefix a prefix of the whole), which assistant_only_loss needs.");
            spans.Add((before.Length, through.Length));
        }
        if (spans.Count == 0) throw Error(row, "messages", "assistant_only_loss is set but the conversation has no assistant turn.");
        var ids = new List<int>();
        var labels = new List<int>();
        int at = 0;
        foreach ((int start, int end) in spans)
        {
            Append(full[at..start], counted: false);
            Append(full[start..end], counted: true);
            at = end;
        }
        Append(full[at..], counted: false);
        return new TrainingExample { InputIds = [.. ids], Labels = [.. labels], Source = source };

        void Append(string text, bool counted)
        {
            if (text.Length == 0) return;
            int[] piece = Tokenize(row, text, addSpecial: false);
            ids.AddRange(piece);
            labels.AddRange(counted ? piece : Enumerable.Repeat(TrainingExample.IgnoreIndex, piece.Length));
        }
    }

    private static string Render(DatasetRow row, ChatTemplate template, IReadOnlyList<ChatMessage> messages, bool generationPrompt)
    {
        try { return template.Apply(messages, generationPrompt); }
        catch (ChatTemplateException e) { throw Error(row, "messages", $"the chat template cannot render it: {e.Message}"); }
    }

    private int[] WithEos(int[] ids)
    {
        IReadOnlyList<int> eos = Tokenizer.EosTokenIds;
        if (eos.Count == 0 || (ids.Length > 0 && eos.Contains(ids[^1]))) return ids;
        return [.. ids, eos[0]];
    }

    private int[] Tokenize(DatasetRow row, string text, bool addSpecial)
    {
        int[] ids = [.. Tokenizer.Encode(text, addSpecial)];
        foreach (int id in ids)
            if (id >= VocabSize) throw Error(row, null, $"the tokenizer gave id {id}, outside the model's vocabulary of {VocabSize}.");
        return ids;
    }

    private long ClassIndex(DatasetRow row)
    {
        JsonNode? v = row.Fields["label"];
        if (v is JsonValue j && j.TryGetValue(out string? name))
        {
            if (Label2Id.TryGetValue(name, out int id)) return id;
            throw Error(row, "label", $"'{name}' is not a label of the model (config.json label2id: {(Label2Id.Count == 0 ? "none" : string.Join(", ", Label2Id.Keys))}).");
        }
        double d = Number(row, "label");
        if (d != Math.Floor(d) || d < 0 || d >= NumLabels) throw Error(row, "label", $"must be an integer in [0, {NumLabels}) or a label name, got {v?.ToJsonString()}.");
        return (long)d;
    }

    private int[] Ids(DatasetRow row, string field)
    {
        int[] ids = Ints(row, field, allowIgnore: false);
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0 || ids[i] >= VocabSize) throw Error(row, field, $"entry {i} is {ids[i]}, outside the model's vocabulary [0, {VocabSize}).");
        return ids;
    }

    private int[] Mask(DatasetRow row, int length)
    {
        int[] mask = Ints(row, "attention_mask", allowIgnore: false);
        if (mask.Length != length) throw Error(row, "attention_mask", $"has {mask.Length} entries, input_ids {length}; they must be the same length.");
        if (mask.Any(m => m is not (0 or 1))) throw Error(row, "attention_mask", "entries must be 0 or 1.");
        return mask;
    }

    private static int[] Ints(DatasetRow row, string field, bool allowIgnore)
    {
        if (row.Fields[field] is not JsonArray a) throw Error(row, field, $"must be a list of integers, got {Kind(row.Fields[field])}.");
        var result = new int[a.Count];
        for (int i = 0; i < a.Count; i++)
        {
            double d = JsonNumber.Is(a[i]) ? JsonNumber.Get(a[i]!) : double.NaN;
            if (d != Math.Floor(d)) throw Error(row, field, $"entry {i} is {a[i]?.ToJsonString() ?? "null"}, not an integer.");
            if (d < (allowIgnore ? TrainingExample.IgnoreIndex : int.MinValue) || d > int.MaxValue)
                throw Error(row, field, $"entry {i} ({d}) is out of range.");
            result[i] = (int)d;
        }
        return result;
    }

    private static string String(DatasetRow row, string field)
    {
        if (!row.Fields.ContainsKey(field)) throw Error(row, field, $"is missing (found fields: {Fields(row.Fields)}).");
        return row.Fields[field] is JsonValue v && v.TryGetValue(out string? s) ? s : throw Error(row, field, $"must be a string, got {Kind(row.Fields[field])}.");
    }

    private static double Number(DatasetRow row, string field) =>
        JsonNumber.Is(row.Fields[field]) ? JsonNumber.Get(row.Fields[field]!) : throw Error(row, field, $"must be a number, got {Kind(row.Fields[field])}.");

    private static string Kind(JsonNode? n) => n is null ? "null" : n.GetValueKind().ToString().ToLowerInvariant();

    private static string Fields(JsonObject f) => f.Count == 0 ? "none" : string.Join(", ", f.Select(p => p.Key));

    private static DataFormatException Error(DatasetRow row, string? field, string problem) => new(row.File, row.Line, field, problem);
}
