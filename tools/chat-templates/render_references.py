"""Renders the reference outputs the C# Jinja interpreter is compared with, using the real jinja2.

The environment is transformers' own: PreTrainedTokenizerBase._compile_jinja_template of the lab's
transformers 4.44 (ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True), its AssistantTracker
{% generation %} tag, its tojson = json.dumps(ensure_ascii=False, ...), raise_exception), taken from the
template that function compiles, plus what transformers 4.45 added to it: the strftime_now global (here on
a fixed clock, 2024-09-17 14:05:09, so the outputs are stable) and jinja2.ext.loopcontrols. A template is
rendered the way apply_chat_template renders it:
    template.render(messages=..., tools=..., documents=None, add_generation_prompt=..., **special_tokens)
where special_tokens holds only the tokens the tokenizer has (special_tokens_map).

Writes (relative to the repository root)
  tests/fixtures/chat_templates/expected/<name>.json   every conversation of conversations.json, with
                                                       add_generation_prompt false and true, for each
                                                       template of templates.json
  tests/fixtures/chat_templates/corpus_expected.json   three conversations for each corpus.json template
  tests/fixtures/jinja/cases.json                      the interpreter's own cases (CASES below): template,
                                                       variables, environment and jinja2's output or error
An outcome is {"output": text} or {"error": exception class, "message": str(e)} (+ "line" for syntax errors).

How to run
  source /work/lab/env.sh && /usr/bin/python3 tools/chat-templates/render_references.py
(jinja2 3.1.2 and markupsafe 2.1.2 are Debian's python3-jinja2; the versions are recorded in the outputs.)
This is our own code; nothing in the build or CI runs it.
"""
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from transformers.tokenization_utils_base import PreTrainedTokenizerBase
import transformers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
CLOCK = datetime.datetime(2024, 9, 17, 14, 5, 9)
VERSIONS = {"jinja2": jinja2.__version__, "transformers": transformers.__version__}


def strftime_now(format):
    return CLOCK.strftime(format)


def chat_environment():
    # lru_cache wraps the method; it uses nothing of self.
    env = PreTrainedTokenizerBase._compile_jinja_template.__wrapped__(None, "").environment
    env.add_extension(jinja2.ext.loopcontrols)
    env.globals["strftime_now"] = strftime_now
    return env


def plain_environment():
    # Jinja's defaults (no trim_blocks/lstrip_blocks, Jinja's own HTML-safe tojson), sandboxed like transformers.
    return ImmutableSandboxedEnvironment(extensions=[jinja2.ext.loopcontrols])


ENVIRONMENTS = {"chat": chat_environment(), "plain": plain_environment()}


def outcome(env, template, variables):
    try:
        compiled = env.from_string(template)
    except jinja2.TemplateSyntaxError as e:
        return {"error": type(e).__name__, "message": e.message, "line": e.lineno}
    except Exception as e:  # e.g. TemplateAssertionError for an unknown filter
        return {"error": type(e).__name__, "message": str(e), "line": getattr(e, "lineno", None)}
    try:
        return {"output": compiled.render(**variables)}
    except Exception as e:
        return {"error": type(e).__name__, "message": str(e)}


def chat_variables(conversation, special_tokens, add_generation_prompt):
    return {"messages": conversation["messages"], "tools": conversation.get("tools"), "documents": None,
            "add_generation_prompt": add_generation_prompt, **special_tokens}


def render_chat_templates():
    folder = os.path.join(FIXTURES, "chat_templates")
    with open(os.path.join(folder, "templates.json"), encoding="utf-8") as h:
        templates = json.load(h)
    with open(os.path.join(folder, "conversations.json"), encoding="utf-8") as h:
        conversations = json.load(h)
    os.makedirs(os.path.join(folder, "expected"), exist_ok=True)
    for t in templates:
        with open(os.path.join(folder, t["file"]), encoding="utf-8", newline="") as h:
            text = h.read()
        # transformers' own compiled template must give the same as the environment used here.
        own = PreTrainedTokenizerBase._compile_jinja_template.__wrapped__(None, text)
        own.environment.globals["strftime_now"] = strftime_now
        cases = []
        for c in conversations:
            for gen in (False, True):
                variables = chat_variables(c, t["special_tokens"], gen)
                result = outcome(ENVIRONMENTS["chat"], text, variables)
                try:
                    check = {"output": own.render(**variables)}
                except Exception as e:
                    check = {"error": type(e).__name__, "message": str(e)}
                assert check == result, (t["name"], c["id"], gen, check, result)
                cases.append({"conversation": c["id"], "add_generation_prompt": gen, **result})
        with open(os.path.join(folder, "expected", t["name"] + ".json"), "w", encoding="utf-8") as h:
            json.dump({"template": t["file"], "versions": VERSIONS, "clock": CLOCK.isoformat(), "cases": cases},
                      h, indent=1, ensure_ascii=False)
            h.write("\n")
    print(f"{len(templates)} templates x {len(conversations) * 2} renders")


CORPUS_CONVERSATIONS = [("system-multi-turn-ending-with-assistant", False), ("multi-turn", True), ("tool-call", True)]


def render_corpus():
    folder = os.path.join(FIXTURES, "chat_templates")
    with open(os.path.join(folder, "corpus.json"), encoding="utf-8") as h:
        corpus = json.load(h)
    with open(os.path.join(folder, "conversations.json"), encoding="utf-8") as h:
        conversations = {c["id"]: c for c in json.load(h)}
    results = []
    for entry in corpus:
        cases = []
        for cid, gen in CORPUS_CONVERSATIONS:
            result = outcome(ENVIRONMENTS["chat"], entry["template"], chat_variables(conversations[cid], entry["special_tokens"], gen))
            cases.append({"conversation": cid, "add_generation_prompt": gen, **result})
        results.append({"model": entry["model"], "cases": cases})
    with open(os.path.join(folder, "corpus_expected.json"), "w", encoding="utf-8") as h:
        json.dump({"versions": VERSIONS, "clock": CLOCK.isoformat(), "templates": results}, h, indent=1, ensure_ascii=False)
        h.write("\n")
    errors = sum(1 for r in results for c in r["cases"] if "error" in c)
    print(f"{len(results)} corpus templates x {len(CORPUS_CONVERSATIONS)} renders ({errors} errors)")


MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": " yo "}]
D = {"a": 1, "b": [1, 2], "c": {"x": None}}

# name, template, extra variables (merged over messages and d), environment
CASES = [
    # -- whitespace control, comments, raw, newlines --
    ("trim_blocks drops the newline after a block tag", "{% if true %}\nyes\n{% endif %}\nafter", {}, "chat"),
    ("without trim_blocks the newline stays", "{% if true %}\nyes\n{% endif %}\nafter", {}, "plain"),
    ("lstrip_blocks strips indentation before a block tag", "line\n    {% if true %}x{% endif %}\n  {# c #}\nend", {}, "chat"),
    ("lstrip_blocks leaves indentation before a print", "line\n    {{ 'x' }}\n", {}, "chat"),
    ("lstrip_blocks only at the start of a line", "a  {% if true %}b{% endif %}", {}, "chat"),
    ("lstrip_blocks after a trimmed newline", "{% for x in [1, 2] %}\n  {% if x %}[{{ x }}]{% endif %}\n{% endfor %}", {}, "chat"),
    ("minus strips all whitespace on its side", "a  \n {{- 'b' -}} \n  c {%- if true -%}  d  {%- endif -%}  e", {}, "chat"),
    ("plus disables lstrip_blocks", "x\n  {%+ if true %}y{% endif %}", {}, "chat"),
    ("plus after the tag disables trim_blocks", "{% if true +%}\ny{% endif %}", {}, "chat"),
    ("comments vanish and trim like blocks", "a{# one #}b\n{# two #}\nc{#- three -#}  d", {}, "chat"),
    ("raw blocks are not parsed", "{% raw %}{{ x }}{% if %}{% endraw %}|{%- raw -%}  {{ y }}  {%- endraw -%}|", {}, "chat"),
    ("raw block keeps the newline after its opening tag", "{% raw %}\nr\n{% endraw %}\nz", {}, "chat"),
    ("newlines are normalised and one trailing newline dropped", "a\r\nb\rc\n\n", {}, "chat"),
    ("tabs count as indentation", "\t{% if true %}t{% endif %}\n", {}, "chat"),
    ("a dict literal inside a print tag", "{{ {'a': {'b': 1}} }}", {}, "chat"),
    # -- for loops --
    ("loop variables", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {}, "chat"),
    ("previtem and nextitem", "{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }};{% endfor %}", {}, "chat"),
    ("loop.cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}, "chat"),
    ("loop.changed", "{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", {}, "chat"),
    ("for-else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] %}x{% else %}empty{% endfor %}", {}, "chat"),
    ("for with an if filter counts only kept items", "{% for x in range(10) if x is odd %}{{ x }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}", {}, "chat"),
    ("tuple unpacking over items()", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {}, "chat"),
    ("iterating a dict gives keys", "{% for k in d %}{{ k }}{% endfor %}", {}, "chat"),
    ("a filter in the iterable", "{% for m in messages | selectattr('role', 'equalto', 'user') %}{{ m.content }}{% endfor %}", {}, "chat"),
    ("nested loops shadow loop", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};{% endfor %}", {}, "chat"),
    ("a set inside a loop does not survive the iteration", "{% set x = 5 %}{% for m in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}|{{ x }}", {}, "chat"),
    ("the loop variable does not leak", "{% set m = 'outer' %}{% for m in [1, 2] %}{% endfor %}{{ m }}", {}, "chat"),
    ("break and continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}, "chat"),
    ("a filtered loop with a tuple target hands on tuples", "{% for k, v in [[1, 2], [3, 4], [0, 5]] if k %}{{ loop.previtem }}|{{ loop.nextitem }};{% endfor %}", {}, "chat"),
    ("a name assigned later in the template is undefined in an earlier loop", "{% for x in [1] %}[{{ l }}]{% endfor %}{% set l = 5 %}{{ l }}", {"l": [3, 1, 2]}, "chat"),
    ("a name read at the top level first keeps the render variable", "{{ l }}{% for x in [1] %}[{{ l }}]{% endfor %}{% set l = 5 %}{{ l }}", {"l": [3, 1, 2]}, "chat"),
    ("a macro sees the template's variable as it is at the call", "{% macro m() %}<{{ l }}>{% endmacro %}{{ m() }}{% set l = 5 %}{{ m() }}", {"l": [3, 1, 2]}, "chat"),
    ("an assignment in one branch keeps the render variable", "{% for x in [1] %}[{{ l }}]{% endfor %}{% if false %}{% set l = 5 %}{% endif %}", {"l": [3, 1, 2]}, "chat"),
    ("an assignment in every branch hides it", "{% for x in [1] %}[{{ l }}]{% endfor %}{% if true %}{% set l = 1 %}{% elif false %}{% set l = 3 %}{% else %}{% set l = 2 %}{% endif %}{{ l }}", {"l": [3, 1, 2]}, "chat"),
    ("a loop's own assignment hides from an inner loop before it", "{% for x in [1, 2] %}{% for y in [1] %}[{{ l }}]{% endfor %}{% set l = x %}{{ l }}{% endfor %}", {"l": "ctx"}, "chat"),
    ("a loop assignment after a read starts from the outer value", "{% set l = 'outer' %}{% for x in [1] %}{{ l }}{% set l = 'inner' %}{{ l }}{% endfor %}{{ l }}", {}, "chat"),
    ("for-else after a break in the first iteration renders the else, as Jinja compiles it", "{% for x in [1, 2] %}{{ x }}{% break %}{% else %}else{% endfor %}|{% for x in [1, 2] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% else %}else{% endfor %}|{% for x in [1] %}{% continue %}{% else %}else{% endfor %}", {}, "chat"),
    ("sorting by a missing attribute keeps the order", "{{ ['b', 'a'] | sort(attribute='role') }} {{ messages | sort(attribute='missing') | map(attribute='role') | list }}", {}, "chat"),
    ("constant expressions are computed when compiling", "[{{ 2[1:3] }}] {{ not 10[::2] }} {{ 'x' if 0 else 5[1:] is defined }} {{ -3 ** 2 }} {{ (-3) ** d.a }} {{ -3 ** d.a }} {{ - d.a ** 2 }}", {}, "chat"),
    ("a slice of a variable that is not a sequence fails", "{{ d.a[1:] }}", {}, "chat"),
    ("Python's full case mapping", "{{ 'straße'.upper() }} {{ 'ﬁx' | upper }} {{ 'groß weiß' | title }} {{ 'İ'.lower() | length }}", {}, "chat"),
    ("Markup escapes what is added to it", "{{ '<a>' | safe + '<b>' }} {{ '<a>' + '<b>' | safe }} {{ '<a>' ~ '<b>' | safe }} {{ ['x' | safe] }} {{ ('<%s>' | safe) % '&' }} {{ '<a>' | safe | upper }} {{ ('x' | safe) is string }} {{ ('x' | e) is escaped }} {{ '<x>' | e | e }} {{ '<x>' | e | forceescape }}", {}, "chat"),
    ("Markup string methods", "{{ ('<a> b' | safe).split() }} {{ ('<a>' | safe).replace('a', '&') }} {{ ('a' | safe).join(['<', '>']) }} {{ ('ab' | safe)[0] }} {{ ('a<b' | safe).partition('<') }} {{ ('<a>' | safe) | trim('<') }} {{ ('<a>' | safe) | length }}", {}, "chat"),
    ("unpacking pairs of a list", "{% for a, b in [(1, 2), [3, 4], 'xy'] %}{{ a }}{{ b }};{% endfor %}", {}, "chat"),
    ("unpacking the wrong number of items", "{% for a, b in [1] %}{% endfor %}", {}, "chat"),
    ("iterating none", "{% for x in none %}{% endfor %}", {}, "chat"),
    ("iterating undefined is empty", "{% for x in nothing %}x{% else %}none{% endfor %}", {}, "chat"),
    ("loop over a string with astral characters", "{% for c in 'a😀b' %}[{{ c }}]{% endfor %}{{ 'a😀b'|length }}{{ 'a😀b'[1] }}{{ 'a😀b'[::-1] }}", {}, "chat"),
    # -- if / set / namespace / with --
    ("if elif else", "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}", {}, "chat"),
    ("a set inside an if is seen after it", "{% if true %}{% set y = 'set' %}{% endif %}{{ y }}", {}, "chat"),
    ("set and reassign", "{% set x = 1 %}{% set x = x + 1 %}{{ x }}", {}, "chat"),
    ("set a tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", {}, "chat"),
    ("block set", "{% set s %}hello {{ 'world' }}{% endset %}{{ s | upper }}", {}, "chat"),
    ("block set with a filter", "{% set s | trim | upper %}  padded  {% endset %}[{{ s }}]", {}, "chat"),
    ("namespace counters", "{% set ns = namespace(count=0, found=false) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }} {{ ns }}", {}, "chat"),
    ("namespace accumulates a list", "{% set ns = namespace(items=[]) %}{% for x in range(3) %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.items }}", {}, "chat"),
    ("namespace from a dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c }}|{{ ns['a'] }}", {}, "chat"),
    ("assigning an attribute of a non-namespace", "{% set d.x = 1 %}", {}, "chat"),
    ("with", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}", {}, "chat"),
    # -- macros, call blocks, filter blocks --
    ("macro with defaults and keywords", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet() }}", {}, "chat"),
    ("macro varargs and kwargs", "{% macro m(a) %}{{ a }} {{ varargs }} {{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}, "chat"),
    ("macro default from an earlier parameter", "{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}", {}, "chat"),
    ("recursive macro", "{% macro down(n) %}{{ n }}{% if n > 0 %}{{ down(n - 1) }}{% endif %}{% endmacro %}{{ down(3) }}", {}, "chat"),
    ("macro sees template variables", "{% set greeting = 'hey' %}{% macro m() %}{{ greeting }} {{ messages[0].content }}{% endmacro %}{{ m() }}", {}, "chat"),
    ("call block", "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}", {}, "chat"),
    ("call block with arguments", "{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %}", {}, "chat"),
    ("filter block", "{% filter upper %}abc {{ 'def' }}{% endfilter %}", {}, "chat"),
    ("generation block", "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}", {}, "chat"),
    # -- expressions --
    ("arithmetic", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}, "chat"),
    ("number literals and float printing", "{{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.5e-7 }} {{ 3.0 }} {{ 10 / 4 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1.0 * 3 }} {{ 123456789.0 * 1000 }} {{ 1e22 }} {{ 0.0001 }} {{ 0.00001 }} {{ -0.0 }} {{ 2.5e15 }} {{ 1 / 3 }}", {}, "chat"),
    ("string operators and slicing", "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 'x' ~ 1 ~ none ~ true ~ nothing }} {{ 'abc'[1] }} {{ 'abc'[-1] }} {{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ 'hello'[::2] }} {{ 'hello'[-3:] }} {{ 'hello'[:-1] }} {{ 'hello'[10:] }}", {}, "chat"),
    ("list and tuple operators", "{{ [1, 2] + [3] }} {{ [1, 2, 3][1:] }} {{ [1, 2, 3][::-1] }} {{ [1, 2, 3][-2:] }} {{ (1,) }} {{ () }} {{ (1, 'a') }} {{ [1, [2, 'x']] }} {{ [0] * 3 }} {{ [1, 2, 3][5:] }}", {}, "chat"),
    ("dict literals and access", "{{ {'a': 1, 'b': [1, 2]} }} {{ {'a': 1}['a'] }} {{ {'a': 1}.a }} {{ {'items': 5}['items'] }} {{ {1: 'int', 1.0: 'float'} }} {{ {'a': 1}.items is defined }}", {}, "chat"),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ true == 1 }} {{ none == none }} {{ 'a' != 'b' }} {{ [1] == (1,) }} {{ {'a': 1} == {'a': 1} }} {{ nothing == nothing }}", {}, "chat"),
    ("membership", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1, 2] }} {{ 'x' not in 'abc' }} {{ 'a' in nothing }} {{ 1 in (1, 2) }}", {}, "chat"),
    ("boolean operators give operands", "{{ 0 or 'default' }} {{ 1 and 'yes' }} {{ none or false }} {{ not [] }} {{ not 'x' }} [{{ '' and 'never' }}] {{ nothing or 'fallback' }}", {}, "chat"),
    ("inline if", "{{ 'yes' if true else 'no' }} {{ 'yes' if false else 'no' }} [{{ 'only' if false }}] {{ 'a' if false else 'b' if true else 'c' }}", {}, "chat"),
    ("printing values as Python prints them", "{{ none }} {{ true }} {{ false }} {{ [none, true, 1.5, \"it's\", 'q\"', 'both\\'\"', '\\n\\t\\x01é😀'] }} {{ (none,) }} {{ {'k': none} }}", {}, "chat"),
    ("string escapes", "{{ 'tab\\there' }}|{{ \"nl\\nx\" }}|{{ '\\u00e9\\x41\\101\\U0001F600' }}|{{ 'a\\\\b' }}|{{ 'unknown \\d escape' }}|{{ 'q\\'s' }}", {}, "chat"),
    ("adjacent strings join", "{{ 'a' 'b' \"c\" }}", {}, "chat"),
    ("truthiness", "{% for v in [0, 1, '', 'x', [], [0], {}, {'a': 1}, none, 0.0, 0.5, nothing, false, true] %}{{ 'T' if v else 'F' }}{% endfor %}", {}, "chat"),
    ("percent formatting", "{{ '%s and %d' % ('a', 3) }} {{ '%05.2f|%x|%r|%5s|%-5s|' % (3.14159, 255, 'q', 'r', 'l') }} {{ '%(a)s-%(b)d' % {'a': 1, 'b': 2} }} {{ '%s' % 'solo' }} {{ '%.3e %g %%' % (12345.678, 0.0001) }}", {}, "chat"),
    # -- attributes, items and undefined --
    ("attribute and item access", "{{ messages[0].role }} {{ messages[0]['content'] }} [{{ messages[5] }}] [{{ d.missing }}] {{ d.missing is defined }} {{ d.c.x }} {{ d['b'][1] }} {{ d.b.0 }} {{ messages[-1].content }}", {}, "chat"),
    ("undefined prints empty and has defaults", "[{{ nothing }}] {{ nothing is defined }} {{ nothing is undefined }} {{ nothing | default('dflt') }} {{ nothing | length }} {{ nothing | list }} [{{ nothing | trim }}] {{ none | default('x') }} {{ '' | default('empty', true) }}", {}, "chat"),
    ("undefined in arithmetic fails", "{{ nothing + 1 }}", {}, "chat"),
    ("attribute of undefined fails", "{{ nothing.attr }}", {}, "chat"),
    ("attribute of a missing key fails", "{{ d.missing.deeper }}", {}, "chat"),
    ("item of a missing element fails", "{{ messages[5]['role'] }}", {}, "chat"),
    ("attribute of none is undefined", "[{{ none.x }}] {{ none.x is defined }}", {}, "chat"),
    ("none in arithmetic", "{{ none + 1 }}", {}, "chat"),
    ("string plus number", "{{ 'a' + 1 }}", {}, "chat"),
    ("calling undefined", "{{ nothing() }}", {}, "chat"),
    ("comparing undefined", "{{ nothing < 1 }}", {}, "chat"),
    ("ordering across types", "{{ 'a' < 1 }}", {}, "chat"),
    ("division by zero", "{{ 1 / 0 }}", {}, "chat"),
    ("mutating methods are unsafe", "[{{ messages.append }}]", {}, "chat"),
    ("calling list.append fails", "{{ messages.append(1) }}", {}, "chat"),
    ("calling dict.update fails", "{{ d.update({}) }}", {}, "chat"),
    # -- methods --
    ("string strip methods", "[{{ '  x  '.strip() }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\t y \\u3000'.strip() }}]", {}, "chat"),
    ("string split methods", "{{ ' a  b c '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ '  a b  c  '.split(none, 1) }} {{ 'l1\\nl2\\r\\nl3'.splitlines() }} {{ 'a<sep>b'.split('<sep>') }}", {}, "chat"),
    ("string predicates", "{{ 'abc'.startswith('ab') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('bc') }} {{ '123'.isdigit() }} {{ 'ab'.isalpha() }} {{ 'AB'.isupper() }} {{ 'ab'.islower() }} {{ '  '.isspace() }} {{ ''.isdigit() }}", {}, "chat"),
    ("string case methods", "{{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO'.capitalize() }} {{ 'Ab'.upper() }} {{ 'Ab'.lower() }} {{ 'Ab'.swapcase() }}", {}, "chat"),
    ("string search and edit methods", "{{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '+', 1) }} {{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('b') }} {{ ', '.join(['x', 'y']) }} {{ '7'.zfill(3) }} {{ 'ab'.center(6, '*') }} {{ 'a=b=c'.partition('=') }} {{ 'pre_x'.removeprefix('pre_') }}", {}, "chat"),
    ("dict methods", "{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}", {}, "chat"),
    ("list methods", "{{ [1, 2, 3].index(2) }} {{ [1, 1, 2].count(1) }}", {}, "chat"),
    # -- filters --
    ("trim and string filters", "[{{ '  x  ' | trim }}][{{ 'xxaxx' | trim('x') }}] {{ 'ab' | upper }} {{ 'AB' | lower }} {{ 'hello world' | capitalize }} {{ 'hello-world foo(bar) x[y]' | title }} {{ 5 | string }} {{ none | string }} {{ [1] | string }}", {}, "chat"),
    ("replace filter", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'a1' | replace(1, 2) }} {{ 'ab' | replace('', '-') }}", {}, "chat"),
    ("join filter", "{{ [1, 2, 3] | join(', ') }} {{ messages | map(attribute='role') | join('/') }} {{ messages | join(',', attribute='content') }} {{ 'abc' | join('.') }}", {}, "chat"),
    ("length and count", "{{ [1, 2] | length }} {{ 'abc' | length }} {{ d | length }} {{ d | count }} {{ '😀' | length }}", {}, "chat"),
    ("sum of strings fails as in Python", "{{ messages | sum(attribute='content', start='') }}", {}, "chat"),
    ("length of a generator fails", "{{ messages | selectattr('role') | length }}", {}, "chat"),
    ("first last list", "{{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ 'abc' | list }} {{ d | list }} [{{ [] | first }}] {{ 'xyz' | first }} {{ 'xyz' | last }}", {}, "chat"),
    ("default filter", "{{ nothing | default('x') }} {{ nothing | d('y') }} {{ false | default('z') }} {{ false | default('z', true) }} {{ none | default('n', boolean=true) }}", {}, "chat"),
    ("map filter", "{{ messages | map(attribute='role') | list }} {{ ['a', 'b'] | map('upper') | list }} {{ [' a ', ' b'] | map('trim') | join }} {{ messages | map(attribute='missing', default='?') | list }} {{ [[1, 2]] | map('join', '-') | list }}", {}, "chat"),
    ("select and reject", "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ [1, 5, 10] | select('greaterthan', 3) | list }} {{ messages | selectattr('role', 'equalto', 'assistant') | map(attribute='content') | list }} {{ messages | rejectattr('role', 'eq', 'user') | list | length }} {{ messages | selectattr('content') | list | length }}", {}, "chat"),
    ("a generator is always true and single pass", "{% set g = messages | selectattr('role', 'equalto', 'nobody') %}{{ 'T' if g else 'F' }}{% set h = [1, 2] | map('string') %}{{ h | list }}{{ h | list }}", {}, "chat"),
    ("items filter", "{{ d | items | list }} {% for k, v in d | items %}{{ k }}{% endfor %} {{ nothing | items | list }}", {}, "chat"),
    ("items filter on a list fails", "{{ [1] | items | list }}", {}, "chat"),
    ("int and float filters", "{{ '42' | int }} {{ '4.7' | int }} {{ 4.7 | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '0x1A' | int(0, 16) }} {{ 'ff' | int(base=16) }} {{ '3.5' | float }} {{ 'x' | float }} {{ 2 | float }} {{ true | int }} {{ ' 12 ' | int }} {{ '1_000' | int }} {{ none | int }}", {}, "chat"),
    ("numeric filters", "{{ -3 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.561 | round(1, 'ceil') }} {{ 2.569 | round(1, 'floor') }} {{ 7 | round }} {{ [1, 2, 3] | sum }} {{ [[1], [2]] | sum(start=[]) }} {{ [{'n': 1.5}, {'n': 2}] | sum(attribute='n') }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ ['b', 'A', 'c'] | max }}", {}, "chat"),
    ("sort unique reverse", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ messages | sort(attribute='role') | map(attribute='role') | list }} {{ [1, 2, 1, 3] | unique | list }} {{ ['a', 'A'] | unique | list }} {{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }} {{ d | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value') }}", {}, "chat"),
    ("batch and slice", "{{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 'x') | list }} {{ [1, 2, 3, 4, 5] | slice(2) | list }}", {}, "chat"),
    ("indent filter", "{{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}", {}, "chat"),
    ("escape and safe", "{{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | escape }} {{ '<b>' | safe }} {{ nothing | e }} {{ 5 | e }}", {}, "chat"),
    ("format truncate wordcount center attr", "{{ '%s-%s' | format(1, 'b') }} {{ '%(x)s' | format(x=5) }} {{ 'the quick brown fox jumps' | truncate(12) }} {{ 'the quick brown fox jumps' | truncate(12, true) }} {{ 'one two  three' | wordcount }} [{{ 'ab' | center(6) }}] {{ 'abc' | attr('upper') is defined }} {{ d | attr('a') is defined }}", {}, "chat"),
    ("tojson as transformers defines it", "{{ d | tojson }} {{ 'é<>&\\'\"' | tojson }} {{ [1.0, 2.5, 1e16, none, true] | tojson }} {{ {'z': 1, 'a': 2} | tojson }} {{ {1: 'one'} | tojson }} {{ 'x' | tojson(ensure_ascii=true) }} {{ '😀é' | tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': [1, {}]} | tojson(sort_keys=true) }} {{ [1, 2] | tojson(separators=(',', ':')) }} {{ 'ctl\\x01\\x7f\\b\\f' | tojson }}", {}, "chat"),
    ("tojson with indent", "{{ d | tojson(indent=2) }}\n{{ [] | tojson(indent=2) }} {{ {} | tojson(indent=4) }}\n{{ [1, [2]] | tojson(indent='\\t') }}\n{{ {'a': 1} | tojson(indent=0) }}", {}, "chat"),
    ("tojson of undefined fails", "{{ nothing | tojson }}", {}, "chat"),
    ("tojson of a namespace fails", "{{ namespace(a=1) | tojson }}", {}, "chat"),
    ("Jinja's own tojson sorts and escapes", "{{ {'z': '<&>', 'a': \"'\"} | tojson }} {{ {'b': [1, 2]} | tojson(2) }} {{ 'é' | tojson }}", {}, "plain"),
    # -- tests --
    ("type tests", "{{ 'a' is string }} {{ 1 is string }} {{ d is mapping }} {{ [1] is mapping }} {{ [1] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ nothing is iterable }} {{ [1] is sequence }} {{ 'a' is sequence }} {{ 1 is sequence }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 'a' is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.5 is float }} {{ none is none }} {{ 0 is none }} {{ true is boolean }} {{ range is callable }} {{ 'x' is callable }}", {}, "chat"),
    ("value tests", "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'a' is equalto 'a' }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 3 is gt 2 }} {{ 3 is ge 3 }} {{ 2 is lt 3 }} {{ 2 is le 1 }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }} {{ 'ab' is lower }} {{ 'AB' is upper }} {{ 2 is in [1, 2] }} {{ none is sameas none }} {{ 'trim' is filter }} {{ 'odd' is test }} {{ 'x' is not defined }}", {}, "chat"),
    # -- globals --
    ("range", "{{ range(3) | list }} {{ range(1, 4) | list }} {{ range(10, 0, -3) | list }} {{ range(0) | list }} {% for i in range(2) %}{{ i }}{% endfor %}", {}, "chat"),
    ("range too big", "{{ range(1000000) | length }}", {}, "chat"),
    ("dict global", "{{ dict(a=1, b='x') }} {{ dict([('k', 'v')]) }}", {}, "chat"),
    ("strftime_now", "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %p %I %y %a %w %-d %%') }}", {}, "chat"),
    ("raise_exception", "{% if true %}{{ raise_exception('Bad input: ' ~ 3) }}{% endif %}", {}, "chat"),
    ("tools and documents as transformers passes them", "{{ tools is defined }} {{ tools is none }} {{ documents is none }}", {"tools": None, "documents": None}, "chat"),
    # -- syntax errors (jinja2's line number is checked too) --
    ("syntax: unclosed for", "{% for x in y %}\nbody\n", {}, "chat"),
    ("syntax: unknown tag", "a\n{% frobnicate %}", {}, "chat"),
    ("syntax: endif without if", "{% endif %}", {}, "chat"),
    ("syntax: nesting mistake", "{% for x in y %}{% if x %}{% endfor %}", {}, "chat"),
    ("syntax: missing expression", "{{ }}", {}, "chat"),
    ("syntax: unexpected token", "{% if x y %}{% endif %}", {}, "chat"),
    ("syntax: unclosed string", "{{ 'abc }}", {}, "chat"),
    ("syntax: unknown filter", "\n\n{{ x | nosuchfilter }}", {}, "chat"),
    ("syntax: unknown test", "{{ x is nosuchtest }}", {}, "chat"),
    ("syntax: unbalanced bracket", "{{ (1 + 2] }}", {}, "chat"),
    ("syntax: unexpected character", "{{ 1 ! 2 }}", {}, "chat"),
    ("syntax: unclosed comment", "{# never closed", {}, "chat"),
    ("syntax: unclosed variable tag", "{{ x ", {}, "chat"),
    ("syntax: break outside a loop", "{% break %}", {}, "chat"),
    ("syntax: assign to a literal", "{% set 1 = 2 %}", {}, "chat"),
]


def render_cases():
    out = []
    for name, template, extra, env in CASES:
        variables = {"messages": MESSAGES, "d": D, **extra}
        result = outcome(ENVIRONMENTS[env], template, variables)
        out.append({"name": name, "environment": env, "template": template, "variables": variables, **result})
    folder = os.path.join(FIXTURES, "jinja")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "cases.json"), "w", encoding="utf-8") as h:
        json.dump({"versions": VERSIONS, "clock": CLOCK.isoformat(), "cases": out}, h, indent=1, ensure_ascii=False)
        h.write("\n")
    print(f"{len(out)} interpreter cases ({sum(1 for c in out if 'error' in c)} errors)")


if __name__ == "__main__":
    render_chat_templates()
    render_corpus()
    render_cases()
    sys.exit(0)
