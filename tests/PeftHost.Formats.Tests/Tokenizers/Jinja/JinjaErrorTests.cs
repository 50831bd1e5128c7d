using PeftHost.Tokenizers;
using PeftHost.Tokenizers.Jinja;
using PeftHost.Tokenizers.Jinja.Runtime;
using PeftHost.Tokenizers.Jinja.Syntax;
using Xunit;

namespace PeftHost.Formats.Tests.Tokenizers.Jinja;

/// <summary>
/// What a template author sees when something is wrong: a syntax error names the line, the column and what
/// was expected; a render error names the position of the failing operation and Python's error; the
/// interpreter refuses what would exhaust the stack or memory instead of crashing.
/// </summary>
public sealed class JinjaErrorTests
{
    private static readonly JinjaEnvironment Env = JinjaReferenceCaseTests.ChatEnvironment();

    private static readonly Dictionary<string, object?> Vars = new()
    {
        ["messages"] = new List<object?> { new Dictionary<string, object?> { ["role"] = "user", ["content"] = "hi" } },
    };

    private static JinjaSyntaxException Syntax(string template) => Assert.Throws<JinjaSyntaxException>(() => Env.Parse(template));

    private static JinjaRuntimeException Runtime(string template) => Assert.Throws<JinjaRuntimeException>(() => Env.Parse(template).Render(Vars));

    [Fact]
    public void An_unclosed_block_names_the_tags_expected_and_where_the_block_opened()
    {
        JinjaSyntaxException e = Syntax("{% for m in messages %}\n{{ m.content }}");
        Assert.Equal(new SourcePosition(2, 16), e.Position);
        Assert.Contains("Jinja was looking for the following tags: 'endfor' or 'else'", e.Message, StringComparison.Ordinal);
        Assert.Contains("The innermost block that needs to be closed is 'for' (line 1, column 4)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_misplaced_end_tag_is_a_nesting_mistake()
    {
        JinjaSyntaxException e = Syntax("{% for x in y %}{% if x %}\n  {% endfor %}");
        Assert.Equal(new SourcePosition(2, 6), e.Position);
        Assert.Contains("Encountered unknown tag 'endfor'. You probably made a nesting mistake", e.Message, StringComparison.Ordinal);
        Assert.Contains("currently looking for 'elif' or 'else' or 'endif'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ x | nosuch }}", 1, 8, "No filter named 'nosuch'.")]
    [InlineData("{{ x | wordwrap }}", 1, 8, "the filter 'wordwrap' is not supported by this template interpreter")]
    [InlineData("{{ x is nosuch }}", 1, 9, "No test named 'nosuch'.")]
    [InlineData("a\n  {{ 'open }}", 2, 6, "the string is not closed")]
    [InlineData("{{ (1 + 2] }}", 1, 10, "unexpected ']', expected ')'")]
    [InlineData("{{ 1 ! 2 }}", 1, 6, "unexpected character '!'")]
    [InlineData("{% if x y %}{% endif %}", 1, 9, "expected token 'end of statement block', got 'y'")]
    [InlineData("{{ }}", 1, 4, "Expected an expression, got 'end of print statement'")]
    [InlineData("{% break %}", 1, 4, "'break' outside of a loop")]
    [InlineData("{% set 1 = 2 %}", 1, 8, "can't assign to 'const'")]
    [InlineData("{% include 'x' %}", 1, 4, "'include' is not supported")]
    [InlineData("{% for x in y recursive %}{% endfor %}", 1, 15, "recursive for loops are not supported")]
    [InlineData("{# never closed", 1, 1, "Missing end of comment tag")]
    [InlineData("{% raw %} never closed", 1, 1, "Missing end of raw directive")]
    [InlineData("{{ '\\x4' }}", 1, 4, "truncated \\xXX escape")]
    [InlineData("{{ 99999999999999999999 }}", 1, 4, "beyond 64 bits")]
    public void Syntax_errors_name_line_column_and_what_is_wrong(string template, int line, int column, string what)
    {
        JinjaSyntaxException e = Syntax(template);
        Assert.Equal(new SourcePosition(line, column), e.Position);
        Assert.Contains(what, e.Detail, StringComparison.Ordinal);
        Assert.StartsWith($"line {line}, column {column}: ", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ messages[0].content + 1 }}", 1, 24, "TypeError", "can only concatenate str (not \"int\") to str")]
    [InlineData("x\n{{ foo.bar }}", 2, 7, "UndefinedError", "'foo' is undefined")]
    [InlineData("{{ messages[0].missing.x }}", 1, 23, "UndefinedError", "'dict object' has no attribute 'missing'")]
    [InlineData("{{ messages[3]['role'] }}", 1, 15, "UndefinedError", "list object has no element 3")]
    [InlineData("{{ messages.append(1) }}", 1, 12, "SecurityError", "access to attribute 'append' of 'list' object is unsafe.")]
    [InlineData("{% for a, b, c in messages %}{% endfor %}", 1, 4, "ValueError", "not enough values to unpack (expected 3, got 2)")]
    [InlineData("{{ 1 // 0 }}", 1, 6, "ZeroDivisionError", "integer division or modulo by zero")]
    [InlineData("{{ messages | tojson | int + none }}", 1, 28, "TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'")]
    [InlineData("{% set d = {} %}{% set d.x = 1 %}", 1, 20, "TemplateRuntimeError", "cannot assign attribute on non-namespace object")]
    [InlineData("{{ raise_exception('Roles must alternate') }}", 1, 4, "TemplateError", "Roles must alternate")]
    public void Render_errors_name_the_position_and_the_python_error(string template, int line, int column, string pythonError, string what)
    {
        JinjaRuntimeException e = Runtime(template);
        Assert.Equal(pythonError, ReferenceOutcome.PythonClass(e.Kind));
        Assert.Equal(new SourcePosition(line, column), e.Position);
        Assert.Equal(what, e.Detail);
        Assert.StartsWith($"line {line}, column {column}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_macro_calling_itself_forever_fails_instead_of_overflowing_the_stack()
    {
        JinjaRuntimeException e = Runtime("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        Assert.Equal(TemplateErrorKind.Recursion, e.Kind);
        Assert.Contains("maximum recursion depth exceeded in macro 'f'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deeply_nested_expressions_are_refused_when_parsing()
    {
        JinjaSyntaxException e = Syntax("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}");
        Assert.Contains("nests deeper than", e.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ range(1000000) | length }}", "Range too big")]
    [InlineData("{{ 'x' * 100000000 }}", "too large")]
    [InlineData("{{ 9223372036854775807 + 1 }}", "beyond 64 bits")]
    public void What_would_exhaust_memory_or_overflow_is_refused(string template, string what)
    {
        JinjaRuntimeException e = Runtime(template);
        Assert.Equal(TemplateErrorKind.Overflow, e.Kind);
        Assert.Contains(what, e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_chat_template_wraps_errors_with_its_origin_position_and_the_message_roles()
    {
        ChatTemplate t = ChatTemplate.Parse("{% for m in messages %}\n{% if m.role != 'user' %}{{ raise_exception('Only user messages here!') }}{% endif %}{% endfor %}",
            new Dictionary<string, string>(), "model/tokenizer_config.json chat_template", null);
        ChatTemplateException e = Assert.Throws<ChatTemplateException>(() => t.Apply([new("user", "a"), new("assistant", "b")], true));
        Assert.Equal("model/tokenizer_config.json chat_template: the template raised an error at line 2, column 29: Only user messages here! (message roles: user, assistant)", e.Message);
        Assert.Equal(2, e.Line);
        Assert.Equal(29, e.Column);
        Assert.IsType<JinjaRuntimeException>(e.InnerException);

        ChatTemplateException undefined = Assert.Throws<ChatTemplateException>(() =>
            ChatTemplate.Parse("{{ messages[0].content.x.y }}", null, null).Apply([new("user", "a")], false));
        Assert.Equal("chat_template: rendering failed at line 1, column 25: UndefinedError: 'str object' has no attribute 'x' (message roles: user)", undefined.Message);
    }
}
