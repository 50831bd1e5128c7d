using PeftHost.Tokenizers.Jinja.Library;
using PeftHost.Tokenizers.Jinja.Nodes;
using PeftHost.Tokenizers.Jinja.Runtime;

namespace PeftHost.Tokenizers.Jinja.Syntax;

/// <summary>
/// Builds the syntax tree from the tokens with Jinja 3.1's grammar and precedence (jinja2/parser.py):
/// conditional expressions, or, and, not, comparisons (chained, in, not in), + -, ~, * / // %, **, unary - +,
/// then primaries with attributes, subscripts, slices, calls, filters and tests. Filters and tests are
/// resolved here: an unknown one is a syntax error, as in Jinja.
/// </summary>
internal sealed class Parser
{
    private const int MaxNesting = 200;

    private readonly List<Token> _tokens;
    private readonly JinjaEnvironment _env;
    private readonly List<(string Tag, SourcePosition Position)> _openTags = [];
    private readonly List<string[]> _endTokens = [];
    private int _index;
    private int _loopDepth;
    private int _nesting;
    private readonly RenderContext _foldContext;

    private Parser(List<Token> tokens, JinjaEnvironment env)
    {
        _tokens = tokens;
        _env = env;
        _foldContext = new RenderContext(env, new Dictionary<string, object?>(), TimeProvider.System) { FoldingConstants = true };
    }

    public static IReadOnlyList<Stmt> Parse(List<Token> tokens, JinjaEnvironment env) => new Parser(tokens, env).Subparse(null);

    private Token Current => _tokens[_index];

    private Token Peek => _tokens[Math.Min(_index + 1, _tokens.Count - 1)];

    private Token Next()
    {
        Token t = _tokens[_index];
        if (_index < _tokens.Count - 1) _index++;
        return t;
    }

    private bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        Next();
        return true;
    }

    private bool SkipOperator(string op)
    {
        if (!Current.IsOperator(op)) return false;
        Next();
        return true;
    }

    private Token Expect(TokenKind kind, string? value = null)
    {
        if (Current.Kind == kind && (value is null || Current.Value == value)) return Next();
        string wanted = value ?? new Token(kind, "", null, default).Describe();
        if (kind == TokenKind.Name && value is null) wanted = "name";
        if (Current.Kind == TokenKind.Eof) FailEof([]);
        throw Fail($"expected token '{wanted}', got '{Current.Describe()}'");
    }

    private JinjaSyntaxException Fail(string message, SourcePosition? at = null) => new(message, at ?? Current.Position);

    private void Enter()
    {
        if (++_nesting > MaxNesting) throw Fail($"the template nests deeper than {MaxNesting} levels");
    }

    private void Leave() => _nesting--;

    // ---- statements ----

    private List<Stmt> Subparse(string[]? endTokens)
    {
        var body = new List<Stmt>();
        if (endTokens is not null) _endTokens.Add(endTokens);
        try
        {
            while (Current.Kind != TokenKind.Eof)
            {
                Token t = Current;
                switch (t.Kind)
                {
                    case TokenKind.Data:
                        body.Add(new TextStmt(t.Position, t.Value));
                        Next();
                        break;
                    case TokenKind.VariableBegin:
                        Next();
                        Expr printed = ParseTuple(withCondexpr: true);
                        // Jinja writes the text of a printed constant into the compiled template (Undefined as "").
                        body.Add(TryConstant(printed, out object? constant) ? new TextStmt(t.Position, PyText.Str(constant)) : new PrintStmt(t.Position, [printed]));
                        Expect(TokenKind.VariableEnd);
                        break;
                    case TokenKind.BlockBegin:
                        Next();
                        if (endTokens is not null && Current.Kind == TokenKind.Name && endTokens.Contains(Current.Value)) return body;
                        body.Add(ParseStatement());
                        Expect(TokenKind.BlockEnd);
                        break;
                    default:
                        throw Fail($"unexpected '{t.Describe()}'");
                }
            }
            return body;
        }
        finally
        {
            if (endTokens is not null) _endTokens.RemoveAt(_endTokens.Count - 1);
        }
    }

    private Stmt ParseStatement()
    {
        Token t = Current;
        if (t.Kind != TokenKind.Name) throw Fail("tag name expected");
        Enter();
        _openTags.Add((t.Value, t.Position));
        try
        {
            switch (t.Value)
            {
                case "for": return ParseFor();
                case "if": return ParseIf();
                case "set": return ParseSet();
                case "macro": return ParseMacro();
                case "call": return ParseCallBlock();
                case "filter": return ParseFilterBlock();
                case "with": return ParseWith();
                case "print": return ParsePrint();
                case "break" or "continue" when _env.LoopControls:
                    if (_loopDepth == 0) throw Fail($"'{t.Value}' outside of a loop");
                    Next();
                    return new LoopControlStmt(t.Position, t.Value == "break" ? Flow.Break : Flow.Continue);
                case "generation" when _env.GenerationTag:
                    Next();
                    return new ScopeStmt(t.Position, ParseStatements(["endgeneration"], dropNeedle: true));
                case "block" or "extends" or "include" or "import" or "from":
                    throw Fail($"'{t.Value}' is not supported: a chat template is rendered on its own, without a template loader");
                default:
                    _openTags.RemoveAt(_openTags.Count - 1);
                    throw UnknownTag(t.Value, t.Position);
            }
        }
        finally
        {
            if (_openTags.Count > 0 && _openTags[^1] == (t.Value, t.Position)) _openTags.RemoveAt(_openTags.Count - 1);
            Leave();
        }
    }

    private JinjaSyntaxException UnknownTag(string name, SourcePosition at)
    {
        var message = new List<string> { $"Encountered unknown tag '{name}'." };
        AppendExpectation(message, name);
        return new JinjaSyntaxException(string.Join(" ", message), at);
    }

    private void FailEof(string[] endTokens)
    {
        var message = new List<string> { "Unexpected end of template." };
        if (endTokens.Length > 0) _endTokens.Add(endTokens);
        AppendExpectation(message, null);
        if (endTokens.Length > 0) _endTokens.RemoveAt(_endTokens.Count - 1);
        throw new JinjaSyntaxException(string.Join(" ", message), Current.Position);
    }

    private void AppendExpectation(List<string> message, string? name)
    {
        if (_endTokens.Count > 0)
        {
            string looking = string.Join(" or ", _endTokens[^1].Select(e => $"'{e}'"));
            if (name is not null && _endTokens.Any(e => e.Contains(name)))
                message.Add($"You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for {looking}.");
            else
                message.Add($"Jinja was looking for the following tags: {looking}.");
        }
        if (_openTags.Count > 0) message.Add($"The innermost block that needs to be closed is '{_openTags[^1].Tag}' ({_openTags[^1].Position}).");
    }

    private List<Stmt> ParseStatements(string[] endTokens, bool dropNeedle = false)
    {
        SkipOperator(":");
        Expect(TokenKind.BlockEnd);
        List<Stmt> result = Subparse(endTokens);
        if (Current.Kind == TokenKind.Eof) FailEof(endTokens);
        if (dropNeedle) Next();
        return result;
    }

    private Stmt ParseFor()
    {
        SourcePosition at = Next().Position;
        AssignTarget target = ParseAssignTarget(extraEndRules: ["in"]);
        Expect(TokenKind.Name, "in");
        Expr iterable = ParseTuple(withCondexpr: false, extraEndRules: ["recursive"]);
        Expr? filter = SkipName("if") ? ParseExpression() : null;
        if (Current.IsName("recursive")) throw Fail("recursive for loops are not supported");
        _loopDepth++;
        List<Stmt> body = ParseStatements(["endfor", "else"]);
        _loopDepth--;
        List<Stmt> otherwise = Next().Value == "endfor" ? [] : ParseStatements(["endfor"], dropNeedle: true);
        return new ForStmt(at, target, iterable, filter, body, otherwise);
    }

    private Stmt ParseIf()
    {
        SourcePosition at = Next().Position;
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        List<Stmt> otherwise = [];
        while (true)
        {
            Expr test = ParseTuple(withCondexpr: false);
            List<Stmt> body = ParseStatements(["elif", "else", "endif"]);
            branches.Add((test, body));
            Token t = Next();
            if (t.Value == "elif") continue;
            if (t.Value == "else") otherwise = ParseStatements(["endif"], dropNeedle: true);
            break;
        }
        return new IfStmt(at, branches, otherwise);
    }

    private Stmt ParseSet()
    {
        SourcePosition at = Next().Position;
        AssignTarget target = ParseAssignTarget(withNamespace: true);
        if (SkipOperator("=")) return new SetStmt(at, target, ParseTuple());
        FilterExpr? filter = ParseFilter(null) as FilterExpr;
        return new SetBlockStmt(at, target, filter, ParseStatements(["endset"], dropNeedle: true));
    }

    private Stmt ParseMacro()
    {
        SourcePosition at = Next().Position;
        string name = Expect(TokenKind.Name).Value;
        (List<string> parameters, List<Expr?> defaults) = ParseSignature();
        return new MacroStmt(at, name, parameters, defaults, ParseBodyOutsideLoops(["endmacro"]));
    }

    private Stmt ParseCallBlock()
    {
        SourcePosition at = Next().Position;
        (List<string> parameters, List<Expr?> defaults) = Current.IsOperator("(") ? ParseSignature() : ([], []);
        if (ParseExpression() is not CallExpr call) throw Fail("expected call", at);
        return new CallBlockStmt(at, call, new MacroStmt(at, "caller", parameters, defaults, ParseBodyOutsideLoops(["endcall"])));
    }

    // A macro's or caller's body is a function of its own: break and continue there cannot reach an enclosing loop.
    private List<Stmt> ParseBodyOutsideLoops(string[] end)
    {
        int saved = _loopDepth;
        _loopDepth = 0;
        try
        {
            return ParseStatements(end, dropNeedle: true);
        }
        finally
        {
            _loopDepth = saved;
        }
    }

    private (List<string>, List<Expr?>) ParseSignature()
    {
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        Expect(TokenKind.Operator, "(");
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0) Expect(TokenKind.Operator, ",");
            parameters.Add(Expect(TokenKind.Name).Value);
            if (SkipOperator("=")) defaults.Add(ParseExpression());
            else if (defaults.Any(d => d is not null)) throw Fail("non-default argument follows default argument");
            else defaults.Add(null);
        }
        Expect(TokenKind.Operator, ")");
        return (parameters, defaults);
    }

    private Stmt ParseFilterBlock()
    {
        SourcePosition at = Next().Position;
        var filter = (FilterExpr)ParseFilter(null, startInline: true)!;
        return new FilterBlockStmt(at, filter, ParseStatements(["endfilter"], dropNeedle: true));
    }

    private Stmt ParseWith()
    {
        SourcePosition at = Next().Position;
        var bindings = new List<(AssignTarget, Expr)>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (bindings.Count > 0) Expect(TokenKind.Operator, ",");
            AssignTarget target = ParseAssignTarget();
            Expect(TokenKind.Operator, "=");
            bindings.Add((target, ParseExpression()));
        }
        return new WithStmt(at, bindings, ParseStatements(["endwith"], dropNeedle: true));
    }

    private Stmt ParsePrint()
    {
        SourcePosition at = Next().Position;
        var values = new List<Expr>();
        while (Current.Kind != TokenKind.BlockEnd)
        {
            if (values.Count > 0) Expect(TokenKind.Operator, ",");
            values.Add(ParseExpression());
        }
        return new PrintStmt(at, values);
    }

    private AssignTarget ParseAssignTarget(string[]? extraEndRules = null, bool withNamespace = false)
    {
        if (withNamespace && Peek.IsOperator("."))
        {
            string name = Expect(TokenKind.Name).Value;
            Next();
            return new NamespaceTarget(name, Expect(TokenKind.Name).Value);
        }
        SourcePosition at = Current.Position;
        return ToTarget(ParseTuple(simplified: true, extraEndRules: extraEndRules), at);
    }

    private AssignTarget ToTarget(Expr e, SourcePosition at) => e switch
    {
        NameExpr n => new NameTarget(n.Name),
        TupleExpr t => new TupleTarget([.. t.Items.Select(i => ToTarget(i, i.Position))]),
        _ => throw Fail($"can't assign to {(e is ConstantExpr ? "'const'" : "this expression")}", at),
    };

    // ---- expressions ----

    private Expr ParseExpression(bool withCondexpr = true)
    {
        Enter();
        try
        {
            return withCondexpr ? ParseConditional() : ParseOr();
        }
        finally
        {
            Leave();
        }
    }

    private Expr ParseConditional()
    {
        Expr e = ParseOr();
        while (Current.IsName("if"))
        {
            SourcePosition at = Next().Position;
            Expr test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseConditional() : null;
            e = Fold(new ConditionalExpr(at, test, e, otherwise));
        }
        return e;
    }

    private Expr ParseOr()
    {
        Expr left = ParseAnd();
        while (Current.IsName("or"))
        {
            SourcePosition at = Next().Position;
            left = Fold(new LogicalExpr(at, isAnd: false, left, ParseAnd()));
        }
        return left;
    }

    private Expr ParseAnd()
    {
        Expr left = ParseNot();
        while (Current.IsName("and"))
        {
            SourcePosition at = Next().Position;
            left = Fold(new LogicalExpr(at, isAnd: true, left, ParseNot()));
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (!Current.IsName("not")) return ParseCompare();
        SourcePosition at = Next().Position;
        Enter();
        try
        {
            return Fold(new UnaryExpr(at, UnaryOperator.Not, ParseNot()));
        }
        finally
        {
            Leave();
        }
    }

    private Expr ParseCompare()
    {
        Expr first = ParseMath1();
        var rest = new List<(CompareOperator, Expr)>();
        SourcePosition at = Current.Position;
        while (true)
        {
            CompareOperator? op = Current.Kind == TokenKind.Operator ? Current.Value switch
            {
                "==" => CompareOperator.Equal,
                "!=" => CompareOperator.NotEqual,
                "<" => CompareOperator.Less,
                "<=" => CompareOperator.LessOrEqual,
                ">" => CompareOperator.Greater,
                ">=" => CompareOperator.GreaterOrEqual,
                _ => null,
            } : null;
            if (op is CompareOperator o)
            {
                if (rest.Count == 0) at = Current.Position;
                Next();
                rest.Add((o, ParseMath1()));
            }
            else if (Current.IsName("in"))
            {
                if (rest.Count == 0) at = Current.Position;
                Next();
                rest.Add((CompareOperator.In, ParseMath1()));
            }
            else if (Current.IsName("not") && Peek.IsName("in"))
            {
                if (rest.Count == 0) at = Current.Position;
                Next();
                Next();
                rest.Add((CompareOperator.NotIn, ParseMath1()));
            }
            else
            {
                break;
            }
        }
        return rest.Count == 0 ? first : Fold(new CompareExpr(at, first, rest));
    }

    private Expr ParseMath1()
    {
        Expr left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            Token op = Next();
            left = Fold(new BinaryExpr(op.Position, op.Value == "+" ? BinaryOperator.Add : BinaryOperator.Subtract, left, ParseConcat()));
        }
        return left;
    }

    private Expr ParseConcat()
    {
        Expr first = ParseMath2();
        if (!Current.IsOperator("~")) return first;
        SourcePosition at = Current.Position;
        var parts = new List<Expr> { first };
        while (SkipOperator("~")) parts.Add(ParseMath2());
        return Fold(new ConcatExpr(at, parts));
    }

    private Expr ParseMath2()
    {
        Expr left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            Token op = Next();
            BinaryOperator kind = op.Value switch
            {
                "*" => BinaryOperator.Multiply,
                "/" => BinaryOperator.Divide,
                "//" => BinaryOperator.FloorDivide,
                _ => BinaryOperator.Modulo,
            };
            left = Fold(new BinaryExpr(op.Position, kind, left, ParsePow()));
        }
        return left;
    }

    private Expr ParsePow()
    {
        Expr left = ParseUnary();
        while (Current.IsOperator("**"))
        {
            Token op = Next();
            Expr right = ParseUnary();
            // Jinja writes a folded negative constant unparenthesised into Python code, so "-3 ** x"
            // computes -(3 ** x) when x is not a constant; reproduced for identical output.
            if (left is ConstantExpr { Value: long or double } c && IsNegative(c.Value) && right is not ConstantExpr)
                left = new UnaryExpr(left.Position, UnaryOperator.Negate, new BinaryExpr(op.Position, BinaryOperator.Power, new ConstantExpr(c.Position, Magnitude(c.Value)), right));
            else
                left = Fold(new BinaryExpr(op.Position, BinaryOperator.Power, left, right));
        }
        return left;
    }

    private static bool IsNegative(object? v) => v is long l ? l < 0 : double.IsNegative((double)v!) && !double.IsNaN((double)v!);

    private static object Magnitude(object? v) => v is long l ? (l == long.MinValue ? (object)-(double)l : -l) : -(double)v!;

    /// <summary>
    /// Jinja's optimizer: an expression of literals is computed when parsing (bottom up) and kept as a constant
    /// when its value is a plain one (numbers, strings, None, lists, tuples and dicts of those); one that fails
    /// or gives something else (Undefined) stays, to be evaluated when rendering.
    /// </summary>
    private Expr Fold(Expr e)
    {
        if (e is ConstantExpr || !TryConstant(e, out object? value) || !HasSafeRepr(value, 0)) return e;
        return new ConstantExpr(e.Position, value);
    }

    // Jinja's as_const: evaluates what needs nothing of a render (it is lazy: "1 if true else x" is constant).
    private bool TryConstant(Expr e, out object? value)
    {
        value = null;
        // Skip what certainly reads a variable (the common case) without raising NotConstantException.
        if (!e.MayFold) return false;
        try
        {
            value = e.Evaluate(new Frame(_foldContext, null));
            return true;
        }
        catch (Exception ex) when (ex is NotConstantException or TemplateError)
        {
            return false;
        }
    }

    private static bool HasSafeRepr(object? v, int depth) => depth < 100 && v switch
    {
        null or bool or long or double or string => true,
        PyList l => l.Items.All(i => HasSafeRepr(i, depth + 1)),
        PyDict d => d.Items.All(kv => HasSafeRepr(kv.Key, depth + 1) && HasSafeRepr(kv.Value, depth + 1)),
        _ => false,
    };

    private Expr ParseUnary(bool withFilter = true)
    {
        Enter();
        try
        {
            Expr node;
            if (Current.IsOperator("-") || Current.IsOperator("+"))
            {
                Token op = Next();
                node = Fold(new UnaryExpr(op.Position, op.Value == "-" ? UnaryOperator.Negate : UnaryOperator.Plus, ParseUnary(withFilter: false)));
            }
            else
            {
                node = ParsePrimary();
            }
            node = ParsePostfix(node);
            return withFilter ? ParseFilterExpr(node) : node;
        }
        finally
        {
            Leave();
        }
    }

    private Expr ParsePrimary()
    {
        Token t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                Next();
                return t.Value switch
                {
                    "true" or "True" => new ConstantExpr(t.Position, true),
                    "false" or "False" => new ConstantExpr(t.Position, false),
                    "none" or "None" => new ConstantExpr(t.Position, null),
                    _ => new NameExpr(t.Position, t.Value),
                };
            case TokenKind.String:
                Next();
                string text = t.Value;
                // Adjacent string literals are one string, as in Python.
                while (Current.Kind == TokenKind.String) text += Next().Value;
                return new ConstantExpr(t.Position, text);
            case TokenKind.Integer:
            case TokenKind.Float:
                Next();
                return new ConstantExpr(t.Position, t.Number);
            case TokenKind.Operator when t.Value == "(":
                Next();
                Expr inner = ParseTuple(explicitParentheses: true);
                Expect(TokenKind.Operator, ")");
                return inner;
            case TokenKind.Operator when t.Value == "[":
                return ParseList();
            case TokenKind.Operator when t.Value == "{":
                return ParseDict();
            case TokenKind.Eof:
                FailEof([]);
                return null!;
            default:
                throw Fail($"unexpected '{t.Describe()}'");
        }
    }

    private Expr ParseTuple(bool simplified = false, bool withCondexpr = true, string[]? extraEndRules = null, bool explicitParentheses = false)
    {
        SourcePosition at = Current.Position;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (IsTupleEnd(extraEndRules)) break;
            items.Add(simplified ? ParsePrimary() : ParseExpression(withCondexpr));
            if (Current.IsOperator(",")) isTuple = true;
            else break;
        }
        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParentheses)
            {
                if (Current.Kind == TokenKind.Eof) FailEof([]);
                throw Fail($"Expected an expression, got '{Current.Describe()}'");
            }
        }
        return Fold(new TupleExpr(at, items));
    }

    private bool IsTupleEnd(string[]? extraEndRules)
    {
        if (Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd || Current.IsOperator(")")) return true;
        return extraEndRules is not null && Current.Kind == TokenKind.Name && extraEndRules.Contains(Current.Value);
    }

    private Expr ParseList()
    {
        SourcePosition at = Next().Position;
        var items = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (items.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOperator("]")) break;
            items.Add(ParseExpression());
        }
        Expect(TokenKind.Operator, "]");
        return Fold(new ListExpr(at, items));
    }

    private Expr ParseDict()
    {
        SourcePosition at = Next().Position;
        var pairs = new List<(Expr, Expr)>();
        while (!Current.IsOperator("}"))
        {
            if (pairs.Count > 0) Expect(TokenKind.Operator, ",");
            if (Current.IsOperator("}")) break;
            Expr key = ParseExpression();
            Expect(TokenKind.Operator, ":");
            pairs.Add((key, ParseExpression()));
        }
        Expect(TokenKind.Operator, "}");
        return Fold(new DictExpr(at, pairs));
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator(".") || Current.IsOperator("[")) node = ParseSubscript(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|")) node = ParseFilter(node)!;
            else if (Current.IsName("is")) node = ParseTest(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        Token t = Next();
        if (t.Value == ".")
        {
            Token attr = Next();
            if (attr.Kind == TokenKind.Name) return Fold(new AttributeExpr(t.Position, node, attr.Value));
            if (attr.Kind != TokenKind.Integer) throw Fail("expected name or number", attr.Position);
            return Fold(new ItemExpr(t.Position, node, new ConstantExpr(attr.Position, attr.Number)));
        }
        var args = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (args.Count > 0) Expect(TokenKind.Operator, ",");
            args.Add(ParseSubscribed());
        }
        Expect(TokenKind.Operator, "]");
        return Fold(new ItemExpr(t.Position, node, args.Count == 1 ? args[0] : new TupleExpr(t.Position, args)));
    }

    private Expr ParseSubscribed()
    {
        SourcePosition at = Current.Position;
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            Expr e = ParseExpression();
            if (!Current.IsOperator(":")) return e;
            start = e;
        }
        Next();
        Expr? stop = null, step = null;
        if (!Current.IsOperator(":") && !Current.IsOperator("]") && !Current.IsOperator(",")) stop = ParseExpression();
        if (SkipOperator(":") && !Current.IsOperator("]") && !Current.IsOperator(",")) step = ParseExpression();
        return new SliceExpr(at, start, stop, step);
    }

    private ArgumentList ParseCallArguments()
    {
        SourcePosition at = Expect(TokenKind.Operator, "(").Position;
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        Expr? starArgs = null, starKwargs = null;
        bool requireComma = false;
        void Ensure(bool ok)
        {
            if (!ok) throw Fail("invalid syntax for function call expression", at);
        }
        while (!Current.IsOperator(")"))
        {
            if (requireComma)
            {
                Expect(TokenKind.Operator, ",");
                if (Current.IsOperator(")")) break;
            }
            if (SkipOperator("*"))
            {
                Ensure(starArgs is null && starKwargs is null);
                starArgs = ParseExpression();
            }
            else if (SkipOperator("**"))
            {
                Ensure(starKwargs is null);
                starKwargs = ParseExpression();
            }
            else if (Current.Kind == TokenKind.Name && Peek.IsOperator("="))
            {
                Ensure(starKwargs is null);
                string key = Next().Value;
                Next();
                kwargs.Add((key, ParseExpression()));
            }
            else
            {
                Ensure(starArgs is null && starKwargs is null && kwargs.Count == 0);
                args.Add(ParseExpression());
            }
            requireComma = true;
        }
        Expect(TokenKind.Operator, ")");
        return new ArgumentList(args, kwargs, starArgs, starKwargs);
    }

    private Expr ParseCall(Expr node) => new CallExpr(node.Position, node, ParseCallArguments());

    private Expr? ParseFilter(Expr? node, bool startInline = false)
    {
        while (Current.IsOperator("|") || startInline)
        {
            if (!startInline) Next();
            Token t = Expect(TokenKind.Name);
            string name = t.Value;
            while (SkipOperator(".")) name += "." + Expect(TokenKind.Name).Value;
            ArgumentList args = Current.IsOperator("(") ? ParseCallArguments() : ArgumentList.Empty;
            if (!_env.Filters.TryGetValue(name, out FilterFunction? filter))
            {
                throw Fail(Filters.NotSupported.Contains(name)
                    ? $"the filter '{name}' is not supported by this template interpreter"
                    : $"No filter named '{name}'.", t.Position);
            }
            node = node is null ? new FilterExpr(t.Position, node, name, filter, args) : Fold(new FilterExpr(t.Position, node, name, filter, args));
            startInline = false;
        }
        return node;
    }

    private Expr ParseTest(Expr node)
    {
        SourcePosition at = Next().Position;
        bool negated = SkipName("not");
        Token t = Expect(TokenKind.Name);
        string name = t.Value;
        while (SkipOperator(".")) name += "." + Expect(TokenKind.Name).Value;
        ArgumentList args = ArgumentList.Empty;
        if (Current.IsOperator("("))
        {
            args = ParseCallArguments();
        }
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float || Current.IsOperator("[") || Current.IsOperator("{"))
            && !Current.IsName("else") && !Current.IsName("or") && !Current.IsName("and"))
        {
            if (Current.IsName("is")) throw Fail("You cannot chain multiple tests with is");
            args = new ArgumentList([ParsePostfix(ParsePrimary())], [], null, null);
        }
        if (!_env.Tests.TryGetValue(name, out TestFunction? test)) throw Fail($"No test named '{name}'.", t.Position);
        Expr result = Fold(new TestExpr(at, node, test, args));
        return negated ? Fold(new UnaryExpr(at, UnaryOperator.Not, result)) : result;
    }
}
