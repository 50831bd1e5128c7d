namespace PeftHost.Tokenizers;

/// <summary>The chat prompt formats recognised in tokenizer_config.json's chat_template.</summary>
public enum ChatTemplateFormat
{
    /// <summary>ChatML (<c>&lt;|im_start|&gt;</c>): Qwen, OpenHermes and others; Qwen's default system prompt is kept.</summary>
    ChatML,

    /// <summary>Llama 3 (<c>&lt;|start_header_id|&gt;</c>), without the 3.1 dated system header.</summary>
    Llama3,

    /// <summary>Llama 3.1 / 3.2: always a system header with "Cutting Knowledge Date" and "Today Date".</summary>
    Llama31,

    /// <summary>Llama 2 chat: <c>[INST]</c> with a <c>&lt;&lt;SYS&gt;&gt;</c> block.</summary>
    Llama2,

    /// <summary>Mistral instruct v0.1/v0.2: <c>[INST] ... [/INST]</c>, no system role.</summary>
    MistralInstruct,

    /// <summary>Gemma / Gemma 2 (<c>&lt;start_of_turn&gt;</c>), no system role.</summary>
    Gemma,

    /// <summary>Gemma 3: as Gemma, with the system message prefixed to the first user turn.</summary>
    Gemma3,
}
