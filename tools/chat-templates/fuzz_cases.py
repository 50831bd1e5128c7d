"""Random templates rendered by jinja2, for a differential test of the C# Jinja interpreter.

Two generators (expressions with filters, tests, methods, slices and operators under every whitespace
control; statements: for/if/set/namespace/macro/call/filter/with/generation/raw/break around them) make
templates from fixed seeds; each is rendered with the chat environment of render_references.py (transformers'
own, jinja2 3.1.2) and written with its outcome to tests/fixtures/jinja/fuzz_cases.json. The test
JinjaFuzzCaseTests renders every one with our interpreter and compares: the same text byte for byte, or a
failure of the same Python class. Outputs that print object addresses (a generator's repr) are left out.
Integers beyond 64 bits (Python's are unbounded) are not generated: the interpreter refuses them.

How to run
  source /work/lab/env.sh && /usr/bin/python3 tools/chat-templates/fuzz_cases.py [--count N] [--seed S]
A larger count (with the test run after) is a deeper search; the committed file is made with the defaults.
Failures are thinned to a quarter and outputs over 1,500 characters skipped, to keep the file small.
This is our own code; nothing in the build or CI runs it.
"""
import argparse
import copy
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(__file__))
import render_references as rr  # noqa: E402

EXPR_VARS = {"s": "Hello World", "n": 3, "f": 2.5, "l": [3, 1, 2], "d": {"a": 1, "b": "x"}, "e": [],
             "msgs": [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo"}], "t": True, "b": "a,b", "z": 0}

STMT_VARS = {"msgs": [{"role": "user", "content": " Hi "},
                      {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1, "é": [1.5, None]}}}]},
                      {"role": "tool", "content": "{\"r\": 2}"}],
             "tl": [{"type": "function", "function": {"name": "f", "description": "Fn <x> & 'y'", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
             "d": {"b": 2, "a": [1, {"z": None}]}, "s": "Ünï  cödé ß", "x": 3}


class Expressions:
    STRS = ["''", "'a'", "'Hello World'", "'  pad  '", "'x,y,,z'", "'é😀ß'", "'a\\nb'", "\"it's\"", "'3'", "'-4.5'", "'ABC def'", "'the-quick (brown) fox'", "'<b>&'", "'%s!'"]
    NUMS = ["0", "1", "2", "-3", "7", "2.5", "-0.5", "1e3", "0.1", "10", "3.0", "True", "false", "none"]
    NAMES = ["s", "n", "f", "l", "d", "e", "msgs", "nothing", "t", "b", "z"]
    FILTERS = ["trim", "upper", "lower", "capitalize", "title", "length", "list", "first", "last", "string", "int", "float", "abs", "reverse", "sort", "unique", "join", "join(',')", "default('D')", "default('D', true)", "tojson", "tojson(indent=2)", "replace('a','X')", "round", "round(1)", "sum", "min", "max", "items", "e", "safe", "count", "wordcount", "center(9)", "indent(2)", "truncate(9)", "select('odd')", "reject('even')", "map('string')", "map('upper')", "selectattr('role')", "map(attribute='role')", "batch(2)", "slice(2)", "dictsort", "format(1)", "list|length"]
    TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence", "odd", "even", "true", "false", "boolean", "divisibleby 2", "eq 1", "in [1, 'a']", "lower", "upper", "callable", "sameas none"]
    METHODS = ["strip()", "strip('a')", "lstrip()", "rstrip()", "split()", "split(',')", "split(' ', 1)", "rsplit(none, 1)", "upper()", "lower()", "title()", "capitalize()", "startswith('a')", "endswith('d')", "replace('l', 'L')", "find('o')", "count('l')", "splitlines()", "isdigit()", "isalpha()", "zfill(5)", "center(8, '*')", "partition(' ')", "join(['1','2'])"]
    DMETHODS = ["get('a')", "get('q', 5)", "items()", "keys()", "values()"]
    SUBSCRIPTS = ['0', '-1', '1:', '::-1', ':2', '1:3', '::2', '"a"', '"role"']

    def __init__(self, r):
        self.r = r

    def atom(self, depth):
        R = self.r
        x = R.random()
        if x < 0.2: return R.choice(self.STRS)
        if x < 0.4: return R.choice(self.NUMS)
        if x < 0.65: return R.choice(self.NAMES)
        if x < 0.75 and depth < 3: return "[" + ", ".join(self.expr(depth + 1) for _ in range(R.randint(0, 3))) + "]"
        if x < 0.8 and depth < 3: return "{" + ", ".join(f"{R.choice(self.STRS)}: {self.expr(depth + 1)}" for _ in range(R.randint(0, 2))) + "}"
        if x < 0.85 and depth < 3: return "(" + self.expr(depth + 1) + ("," if R.random() < 0.3 else "") + ")"
        return R.choice(self.NAMES)

    def postfix(self, e):
        R = self.r
        x = R.random()
        if x < 0.15: return f"{e}|{R.choice(self.FILTERS)}"
        if x < 0.25: return f"{e} is {'not ' if R.random() < 0.3 else ''}{R.choice(self.TESTS)}"
        if x < 0.35: return f"{e}.{R.choice(self.METHODS)}"
        if x < 0.4: return f"{e}.{R.choice(self.DMETHODS)}"
        if x < 0.5: return e + "[" + R.choice(self.SUBSCRIPTS) + "]"
        if x < 0.55: return f"{e}.{R.choice(['a', 'role', 'content', 'x', '0'])}"
        return e

    def expr(self, depth=0):
        R = self.r
        if depth > 3: return self.atom(depth)
        x = R.random()
        a = self.postfix(self.atom(depth))
        if x < 0.35: return a
        if x < 0.6: return f"{a} {R.choice(['+', '-', '*', '/', '//', '%', '**', '~', '==', '!=', '<', '>=', 'in', 'not in', 'and', 'or'])} {self.expr(depth + 1)}"
        if x < 0.7: return f"not {a}"
        if x < 0.8: return f"{a} if {self.expr(depth + 1)} else {self.expr(depth + 1)}"
        if x < 0.85: return f"-{a}"
        return f"({a})"

    def ws(self):
        return self.r.choice(["", "", "", " ", "\n", "  \n", "\n  ", "\t", "\n\n"])

    def open(self, kind):
        return "{" + kind + self.r.choice(["", "", "-", "+"]) + " " if kind == "%" else "{{" + self.r.choice(["", "-"]) + " "

    def close(self, kind):
        return " " + self.r.choice(["", "", "-", "+"]) + "%}" if kind == "%" else " " + self.r.choice(["", "-"]) + "}}"

    def block(self, depth=0):
        R = self.r
        parts = []
        for _ in range(R.randint(1, 4)):
            x = R.random()
            parts.append(self.ws())
            if x < 0.3 or depth > 2:
                parts.append(self.open("{") + self.expr() + self.close("{"))
            elif x < 0.45:
                parts.append(R.choice(["text", "a b", "x", "\n", "  y  "]))
            elif x < 0.6:
                parts.append(self.open("%") + f"if {self.expr()}" + self.close("%") + self.block(depth + 1)
                             + (self.open("%") + "else" + self.close("%") + self.block(depth + 1) if R.random() < 0.4 else "")
                             + self.open("%") + "endif" + self.close("%"))
            elif x < 0.75:
                v = R.choice(["i", "x", "k, v"])
                it = R.choice(["l", "s", "d", "d.items()", "msgs", "range(3)", "nothing", self.expr()])
                body = self.block(depth + 1) + self.open("{") + R.choice(["loop.index", "loop.first", "loop.last", "loop.length", "loop.revindex0", "i", "x", "k", "loop.previtem", "loop.cycle(1,2)"]) + self.close("{")
                parts.append(self.open("%") + f"for {v} in {it}" + (f" if {self.expr()}" if R.random() < 0.2 else "") + self.close("%") + body
                             + (self.open("%") + "else" + self.close("%") + "E" if R.random() < 0.3 else "") + self.open("%") + "endfor" + self.close("%"))
            elif x < 0.85:
                parts.append(self.open("%") + f"set {R.choice(self.NAMES)} = {self.expr()}" + self.close("%"))
            elif x < 0.9:
                parts.append(R.choice(["{# c #}", "{#- c -#}", "{% raw %}{{ r }}{% endraw %}"]))
            else:
                parts.append(self.open("%") + "set ns = namespace(c=0)" + self.close("%") + self.open("%") + "for i in l" + self.close("%")
                             + self.open("%") + "set ns.c = ns.c + 1" + self.close("%") + self.open("%") + "endfor" + self.close("%") + "{{ ns.c }}")
        return "".join(parts)


class Statements:
    LIT = ["'a'", "'B c'", "' x '", "'é\\u00e9\\x41\\n\\t'", "\"q'\"", "'\\\\'", "'😀'", "''", "1", "0", "-2", "3.5", "1e-7", "true", "none", "[1, 'a', none]", "{'k': 1, 'j': [2]}", "(1, 2)", "()", "'%d-%s'"]
    VARS = ["m", "m.role", "m['content']", "m.tool_calls", "m.content", "msgs", "msgs[0]", "msgs[-1].content", "tl", "tl[0].function", "x", "y", "ns.v", "loop.index0", "nothing", "d", "d.items()", "s"]
    FILTERS = ["trim", "tojson", "tojson(indent=2)", "tojson(ensure_ascii=true)", "tojson(sort_keys=true)", "tojson(separators=(',', ':'))", "string", "length", "upper", "title", "capitalize", "list", "first", "last", "join(', ')", "default('-')", "e", "int", "float", "replace(' ', '_')", "indent(4, first=true)", "map(attribute='role')|list", "selectattr('role', 'eq', 'user')|list", "rejectattr('content')|list", "items|list", "dictsort", "sort(attribute='role')", "unique|list", "reverse|list", "wordcount", "truncate(5)", "center(7)", "format('Z')", "batch(2)|list", "sum(start=0)", "abs", "round(2)", "min", "max"]
    TESTS = ["defined", "none", "string", "mapping", "iterable", "sequence", "number", "true", "false", "eq 'user'", "in ['a', 'user']", "divisibleby 2", "odd", "lower"]
    PRE = "{% set ns = namespace(v=0) %}{% macro mac(a, b='B') %}<{{ a }}{{ b }}{{ varargs }}>{% endmacro %}{% macro cm() %}{{ caller(1) }}{{ caller(2) }}{% endmacro %}"

    def __init__(self, r):
        self.r = r

    def e(self, d=0):
        R = self.r
        x = R.random()
        if d > 2 or x < 0.3: base = R.choice(self.LIT + self.VARS)
        elif x < 0.45: base = f"{self.e(d + 1)} ~ {self.e(d + 1)}"
        elif x < 0.55: base = f"{self.e(d + 1)} {R.choice(['+', '-', '*', '==', '!=', '<', 'in', 'not in', 'and', 'or', '%'])} {self.e(d + 1)}"
        elif x < 0.65: base = f"({self.e(d + 1)} if {self.e(d + 1)} else {self.e(d + 1)})"
        elif x < 0.7: base = f"not {self.e(d + 1)}"
        elif x < 0.78: base = f"[{self.e(d + 1)}, {self.e(d + 1)}]"
        elif x < 0.85: base = f"{{{R.choice(self.LIT[:8])}: {self.e(d + 1)}}}"
        else: base = f"mac({self.e(d + 1)})"
        x = R.random()
        if x < 0.25: base = f"({base})|{R.choice(self.FILTERS)}"
        elif x < 0.35: base = f"({base}) is {R.choice(['', 'not '])}{R.choice(self.TESTS)}"
        elif x < 0.42: base = "(" + base + ")[" + R.choice(['0', '-1', '1:', ':-1', '::-1', "'role'"]) + "]"
        elif x < 0.5: base = "(" + base + ")." + R.choice(['strip()', 'split()', 'upper()', 'get("role")', 'items()', 'startswith("a")', 'replace("a", "b")', 'role'])
        return base

    def tag(self, body):
        return "{%" + self.r.choice(["", "", "-", "+"]) + " " + body + " " + self.r.choice(["", "", "-", "+"]) + "%}"

    def out(self, x):
        return "{{" + self.r.choice(["", "-"]) + " " + x + " " + self.r.choice(["", "-"]) + "}}"

    def stmts(self, d=0):
        R, T, P = self.r, self.tag, self.out
        parts = []
        for _ in range(R.randint(1, 4)):
            parts.append(R.choice(["", "", " ", "\n", "\n  ", "  \n", "\t", "\n\n  "]))
            x = R.random()
            if d > 2 or x < 0.3: parts.append(P(self.e()))
            elif x < 0.4: parts.append(R.choice(["text", "a\nb", " [x] "]))
            elif x < 0.55:
                parts.append(T(f"for m in {R.choice(['msgs', 'msgs|reverse', 'tl', 'd.items()', 'msgs if true', 'range(2)', 'nothing'])}" + (f" if {self.e()}" if R.random() < 0.2 else ""))
                             + self.stmts(d + 1) + (T("break") if R.random() < 0.1 else "") + (T("else") + self.stmts(d + 1) if R.random() < 0.2 else "") + T("endfor"))
            elif x < 0.65:
                parts.append(T(f"if {self.e()}") + self.stmts(d + 1) + (T(f"elif {self.e()}") + self.stmts(d + 1) if R.random() < 0.3 else "")
                             + (T("else") + self.stmts(d + 1) if R.random() < 0.5 else "") + T("endif"))
            elif x < 0.72: parts.append(T(f"set {R.choice(['x', 'y', 's', 'd', 'msgs', 'm'])} = {self.e()}"))
            elif x < 0.77: parts.append(T(f"set ns.v = {self.e()}"))
            elif x < 0.8: parts.append(T(f"set {R.choice(['x', 'y'])}") + self.stmts(d + 1) + T("endset"))
            elif x < 0.84: parts.append(T(f"with x = {self.e()}") + self.stmts(d + 1) + T("endwith"))
            elif x < 0.87: parts.append(T("filter upper") + self.stmts(d + 1) + T("endfilter"))
            elif x < 0.9: parts.append(T("call(a) cm()") + P("a ~ '|'") + self.stmts(d + 1) + T("endcall"))
            elif x < 0.93: parts.append(T("generation") + self.stmts(d + 1) + T("endgeneration"))
            else: parts.append(R.choice(["{# c #}", "{#- c -#}", "{% raw %} {{ r }} {% endraw %}", "{%- raw -%} r {%- endraw -%}"]))
        return "".join(parts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200, help="templates per generator")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--out", default=os.path.join(rr.FIXTURES, "jinja", "fuzz_cases.json"))
    args = parser.parse_args()
    env = rr.ENVIRONMENTS["chat"]
    cases = []
    for kind, make, variables in (("expressions", lambda r: Expressions(r).block(), EXPR_VARS),
                                  ("statements", lambda r: Statements.PRE + Statements(r).stmts(), STMT_VARS)):
        r = random.Random(f"{args.seed}-{kind}")
        made = 0
        while made < args.count:
            template = make(r)
            result = rr.outcome(env, template, copy.deepcopy(variables))
            if " at 0x" in result.get("output", "") or len(result.get("output", "")) > 1500:
                continue
            # Random code fails often; keep a quarter of the failures, enough to check that we fail alike.
            if "error" in result and r.random() > 0.25:
                continue
            cases.append({"generator": kind, "template": template, **result})
            made += 1
    with open(args.out, "w", encoding="utf-8") as h:
        json.dump({"versions": rr.VERSIONS, "seed": args.seed, "variables": {"expressions": EXPR_VARS, "statements": STMT_VARS},
                   "cases": cases}, h, indent=0, ensure_ascii=False)
        h.write("\n")
    print(f"{len(cases)} cases ({sum(1 for c in cases if 'error' in c)} errors) -> {args.out}")


if __name__ == "__main__":
    import warnings
    warnings.simplefilter("ignore", SyntaxWarning)  # jinja2's generated code for slices of literals
    main()
