using PeftHost.Formats.Tests.Support;
using PeftHost.Tokenizers;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers;

/// <summary>
/// Chat templates as published in models' tokenizer_config.json (text after JSON decoding, so "\n" is the
/// two characters of a Jinja escape); expected strings are written out from what each template renders.
/// </summary>
public sealed class ChatTemplateTests
{
    private const string Qwen2 = @"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private const string ChatMl = @"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private const string Llama3 = @"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    private const string Llama31Head = """
        {{- bos_token }}
        {%- if not date_string is defined %}
            {%- set date_string = "26 Jul 2024" %}
        {%- endif %}
        {%- if messages[0]['role'] == 'system' %}
            {%- set system_message = messages[0]['content']|trim %}
            {%- set messages = messages[1:] %}
        {%- else %}
            {%- set system_message = "" %}
        {%- endif %}
        {{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
        {{- "Cutting Knowledge Date: December 2023\n" }}
        {{- "Today Date: " + date_string + "\n\n" }}
        {{- system_message }}
        {{- "<|eot_id|>" }}
        {%- for message in messages %}
            {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
        {%- endif %}
        """;

    private const string Mistral = @"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    private const string Llama2 = @"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    private const string Gemma = @"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";

    private static readonly ChatMessage[] Conversation =
    [
        new("user", "Hello"),
        new("assistant", " Hi there "),
        new("user", "Who are you?"),
    ];

    [Fact]
    public void Qwen2_adds_its_default_system_prompt()
    {
        ChatTemplate t = ChatTemplate.Parse(Qwen2, null, "<|endoftext|>");
        Assert.Equal(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n Hi there <|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n",
            t.Apply(Conversation, addGenerationPrompt: true));
        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n",
            t.Apply([new("system", "Be brief."), new("user", "Hello")], addGenerationPrompt: false));
    }

    [Fact]
    public void Plain_ChatML_has_no_default_system_prompt()
    {
        ChatTemplate t = ChatTemplate.Parse(ChatMl, null, null);
        Assert.Equal("<|im_start|>user\nHello<|im_end|>\n", t.Apply([new("user", "Hello")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama3_trims_content_and_starts_with_bos()
    {
        ChatTemplate t = ChatTemplate.Parse(Llama3, "<|begin_of_text|>", "<|eot_id|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            t.Apply([new("system", "Be brief. "), new("user", "Hello")], addGenerationPrompt: true));
    }

    [Fact]
    public void Llama31_always_writes_the_dated_system_header()
    {
        ChatTemplate t = ChatTemplate.Parse(Llama31Head, "<|begin_of_text|>", "<|eot_id|>");
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
            t.Apply([new("user", "Hello")], addGenerationPrompt: false));
    }

    [Fact]
    public void Llama32_uses_the_given_date_when_the_template_asks_for_strftime_now()
    {
        string template = Llama31Head.Replace("{%- set date_string = \"26 Jul 2024\" %}", "{%- set date_string = strftime_now(\"%d %b %Y\") %}", StringComparison.Ordinal);
        ChatTemplate t = ChatTemplate.Parse(template, "<|begin_of_text|>", "<|eot_id|>", new FixedClock(new DateTime(2025, 3, 5, 23, 59, 0)));
        Assert.Contains("Today Date: 05 Mar 2025\n\nSys<|eot_id|>", t.Apply([new("system", "Sys"), new("user", "Hi")], true), StringComparison.Ordinal);
    }

    [Fact]
    public void Mistral_wraps_user_turns_and_closes_assistant_turns_with_eos()
    {
        ChatTemplate t = ChatTemplate.Parse(Mistral, "<s>", "</s>");
        Assert.Equal("<s>[INST] Hello [/INST] Hi there </s>[INST] Who are you? [/INST]", t.Apply(Conversation, addGenerationPrompt: true));
        ChatTemplateException e = Assert.Throws<ChatTemplateException>(() => t.Apply([new("system", "x"), new("user", "y")], true));
        Assert.Contains("system", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Llama2_puts_the_system_prompt_in_the_first_instruction()
    {
        ChatTemplate t = ChatTemplate.Parse(Llama2, "<s>", "</s>");
        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are you? [/INST]",
            t.Apply([new("system", "Be brief."), .. Conversation], addGenerationPrompt: true));
    }

    [Fact]
    public void Gemma_renames_assistant_to_model_and_refuses_system()
    {
        ChatTemplate t = ChatTemplate.Parse(Gemma, "<bos>", "<eos>");
        Assert.Equal(
            "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n",
            t.Apply(Conversation, addGenerationPrompt: true));
        ChatTemplateException e = Assert.Throws<ChatTemplateException>(() => t.Apply([new("system", "x"), new("user", "y")], true));
        Assert.Contains("System role not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Roles_must_alternate_where_the_template_says_so()
    {
        ChatTemplate t = ChatTemplate.Parse(Gemma, "<bos>", "<eos>");
        Assert.Throws<ChatTemplateException>(() => t.Apply([new("user", "a"), new("user", "b")], true));
    }

    [Fact]
    public void Any_template_renders_not_only_the_known_families()
    {
        ChatTemplate t = ChatTemplate.Parse("{% for m in messages %}### {{ m.role | upper }}: {{ m.content }}\n{% endfor %}", null, null);
        Assert.Equal("### USER: Hello\n### ASSISTANT:  Hi there \n### USER: Who are you?\n", t.Apply(Conversation, addGenerationPrompt: false));
    }

    [Fact]
    public void Invalid_templates_are_refused_with_line_and_column()
    {
        ChatTemplateException e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{% for m in messages %}\n{{ m.content }", null, null));
        Assert.Equal(2, e.Line);
        Assert.Contains("line 2, column", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Template_is_read_from_tokenizer_config()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.SentencePieceTiny());
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", System.Text.Json.JsonSerializer.Serialize(new
        {
            bos_token = "<s>", eos_token = "</s>", chat_template = Mistral,
        }));
        ITextTokenizer tok = TokenizerLoader.FromDirectory(dir);
        Assert.NotNull(tok.ChatTemplate);
        Assert.Equal("<s>[INST] hi [/INST]", tok.ChatTemplate.Apply([new("user", "hi")], true));
    }

    [Fact]
    public void A_broken_template_does_not_stop_the_tokenizer_from_loading_and_its_error_names_the_file()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.SentencePieceTiny());
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", System.Text.Json.JsonSerializer.Serialize(new
        {
            bos_token = "<s>", eos_token = "</s>", chat_template = "{% for m in messages %}\n{{ m.content }",
        }));
        ITextTokenizer tok = TokenizerLoader.FromDirectory(dir);
        Assert.NotEmpty(tok.Encode("hi", addSpecialTokens: false));
        Assert.NotNull(tok.ChatTemplate);
        ChatTemplateException e = Assert.Throws<ChatTemplateException>(() => tok.ChatTemplate.Apply([new("user", "hi")], true));
        Assert.StartsWith(Path.Combine(dir, "tokenizer_config.json") + " chat_template: syntax error at line 2, column 14:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_template_sees_the_special_tokens_the_tokenizer_has_and_not_the_others()
    {
        string dir = TokenizerTestFiles.NewDir();
        TokenizerTestFiles.Write(dir, "tokenizer.json", TokenizerTestFiles.SentencePieceTiny());
        TokenizerTestFiles.Write(dir, "tokenizer_config.json", System.Text.Json.JsonSerializer.Serialize(new
        {
            eos_token = "</s>", pad_token = "<unk>", chat_template = "{{ bos_token is defined }}|{{ eos_token }}|{{ pad_token }}|{{ tools }}|{{ add_generation_prompt }}",
        }));
        ITextTokenizer tok = TokenizerLoader.FromDirectory(dir);
        Assert.Equal("False|</s>|<unk>|None|True", tok.ChatTemplate!.Apply([new("user", "hi")], true));
    }
}
