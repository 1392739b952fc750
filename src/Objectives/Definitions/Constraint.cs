using System.Globalization;

namespace ParetoPrune.Objectives;

public enum ConstraintOperator
{
    /// <summary><c>&lt;=</c>: an upper bound.</summary>
    AtMost,
    /// <summary><c>&gt;=</c>: a lower bound.</summary>
    AtLeast,
}

/// <summary>
/// A bound on one objective, absolute (<c>energy &lt;= 50 mJ</c>) or relative to the unpruned baseline
/// (<c>macs &lt;= 0.4*baseline</c>, <c>accuracy &gt;= baseline - 0.01</c>). Values are held in the objective's unit
/// (<see cref="ObjectiveInfo.Unit"/>): accuracy as a fraction, latency in ms, energy in mJ, sizes in bytes.
/// </summary>
/// <param name="Value">The bound when absolute; the factor of the baseline when <paramref name="RelativeToBaseline"/>.</param>
/// <param name="Offset">Relative bounds only: added to <c>Value × baseline</c> (<c>baseline - 0.01</c> has Value 1, Offset −0.01).</param>
public sealed record Constraint(ObjectiveKind Objective, ConstraintOperator Operator, double Value, bool RelativeToBaseline = false, double Offset = 0)
{
    public ObjectiveKind Objective { get; init; } = Enum.IsDefined(Objective) ? Objective
        : throw new ArgumentOutOfRangeException(nameof(Objective), Objective, "not an objective");
    public ConstraintOperator Operator { get; init; } = Enum.IsDefined(Operator) ? Operator
        : throw new ArgumentOutOfRangeException(nameof(Operator), Operator, "not a comparison");
    public double Value { get; init; } = double.IsFinite(Value) ? Value
        : throw new ArgumentException($"a constraint bound must be a finite number, not {Value}", nameof(Value));
    public double Offset { get; init; } = !double.IsFinite(Offset)
        ? throw new ArgumentException($"a constraint offset must be a finite number, not {Offset}", nameof(Offset))
        : Offset != 0 && !RelativeToBaseline
            ? throw new ArgumentException("only a bound relative to the baseline has an offset", nameof(Offset))
            : Offset;

    public bool IsUpperBound => Operator == ConstraintOperator.AtMost;

    /// <summary>The absolute bound: <see cref="Value"/>, or <c>Value × baseline + Offset</c>.</summary>
    /// <exception cref="InvalidOperationException">The bound is relative and the baseline lacks this objective.</exception>
    public double Resolve(IReadOnlyDictionary<ObjectiveKind, double> baseline)
    {
        if (!RelativeToBaseline) return Value;
        if (!baseline.TryGetValue(Objective, out double b))
            throw new InvalidOperationException($"'{this}' is relative to the baseline, but the baseline's {Objective.Name()} is not known");
        return Value * b + Offset;
    }

    /// <summary>
    /// 0 when <paramref name="value"/> meets the bound; otherwise by how much it misses, divided by the baseline's value of
    /// this objective (by |bound| where no baseline value is known or it is 0). The miss thus reads as a fraction of
    /// the unpruned model — 10 % too many MACs and 0.1 × baseline accuracy too little weigh the same — so violations of
    /// different objectives and units can be summed (<see cref="ConstraintSet.TotalViolation"/>).
    /// </summary>
    public double Violation(double value, IReadOnlyDictionary<ObjectiveKind, double> baseline)
    {
        if (!double.IsFinite(value))
            throw new ArgumentException($"cannot check '{this}' against {value}: the value must be a finite number", nameof(value));
        double bound = Resolve(baseline);
        double miss = IsUpperBound ? value - bound : bound - value;
        if (miss <= 0) return 0;
        double scale = baseline.TryGetValue(Objective, out double b) && b != 0 ? Math.Abs(b) : bound != 0 ? Math.Abs(bound) : 1;
        return miss / scale;
    }

    /// <summary>
    /// Reads <c>&lt;objective&gt; &lt;= &lt;bound&gt;</c> or <c>&gt;=</c>. Bounds: a number with an optional unit
    /// (<c>20 ms</c>, <c>50 mJ</c>, <c>2 MiB</c>, <c>300M</c>, <c>90%</c>), or relative: <c>0.4*baseline</c>,
    /// <c>40% baseline</c>, <c>baseline*0.4</c>, <c>baseline - 0.01</c>, <c>baseline - 1%</c> (accuracy points),
    /// <c>0.9*baseline + 2 ms</c>. Units: ms, s, us for latency; mJ, J, uJ for energy; B, KB, KiB, MB, MiB, GB, GiB
    /// for sizes (KB = 1000 B, KiB = 1024 B); k, M, G for counts; % for accuracy.
    /// </summary>
    /// <exception cref="FormatException">The text is not a constraint; the message says what was expected.</exception>
    public static Constraint Parse(string text) => ConstraintSyntax.Parse(text);

    /// <summary>The canonical text, which <see cref="Parse"/> reads back to an equal constraint.</summary>
    public override string ToString()
    {
        string op = IsUpperBound ? "<=" : ">=";
        string bound = !RelativeToBaseline
            ? WithUnit(Value)
            : (Value == 1 ? "baseline" : $"{Number(Value)}*baseline")
              + (Offset == 0 ? "" : $" {(Offset < 0 ? '-' : '+')} {WithUnit(Math.Abs(Offset))}");
        return $"{Objective.Name()} {op} {bound}";
    }

    string WithUnit(double value) => Objective.Info().Quantity switch
    {
        Quantity.Time => Number(value) + " ms",
        Quantity.Energy => Number(value) + " mJ",
        Quantity.Bytes => Number(value) + " B",
        _ => Number(value),
    };

    internal static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>The text form of a constraint: split at the comparison, then a small token grammar for the bound.</summary>
static class ConstraintSyntax
{
    internal const string Expected = "expected '<objective> <= <bound>' or '<objective> >= <bound>', " +
                                     "e.g. 'latency <= 20 ms', 'macs <= 0.4*baseline' or 'accuracy >= baseline - 0.01'";

    readonly record struct Token(char Kind, string Text, double Number) // Kind: 'n' number, 'w' word, else the symbol
    {
        public bool IsWord(string word) => Kind == 'w' && Text.Equals(word, StringComparison.OrdinalIgnoreCase);
    }

    public static Constraint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        FormatException Error(string message) => new($"constraint '{text.Trim()}': {message}");

        int at = text.IndexOfAny(['<', '>', '=', '≤', '≥']);
        if (at < 0) throw Error(Expected);
        string rest = text[at..];
        string op = rest.StartsWith("<=", StringComparison.Ordinal) || rest.StartsWith(">=", StringComparison.Ordinal)
                    || rest.StartsWith("==", StringComparison.Ordinal) || rest.StartsWith("=<", StringComparison.Ordinal)
                    || rest.StartsWith("=>", StringComparison.Ordinal)
            ? rest[..2] : rest[..1];
        ConstraintOperator? parsed = op switch
        {
            "<=" or "≤" => ConstraintOperator.AtMost,
            ">=" or "≥" => ConstraintOperator.AtLeast,
            _ => null,
        };
        if (parsed is not { } comparison)
            throw Error($"'{op}' is not supported: bounds are inclusive, write '<=' or '>='");

        string name = text[..at].Trim();
        if (name.Length == 0) throw Error($"the objective is missing before '{op}'; {Expected}");
        if (!ObjectiveCatalog.TryParse(name, out var objective))
            throw Error($"unknown objective '{name}': known objectives are {ObjectiveCatalog.KnownNames}");
        string bound = text[(at + op.Length)..].Trim();
        if (bound.Length == 0) throw Error($"the bound is missing after '{op}'; {Expected}");

        return ParseBound(objective, comparison, Tokenize(bound, Error), Error);
    }

    static List<Token> Tokenize(string s, Func<string, FormatException> error)
    {
        var tokens = new List<Token>();
        for (int i = 0; i < s.Length;)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < s.Length && char.IsAsciiDigit(s[i + 1])))
            {
                int start = i;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
                // An exponent only when digits follow, so "5e" stays a number and a (bad) unit.
                if (i + 1 < s.Length && s[i] is 'e' or 'E'
                    && (char.IsAsciiDigit(s[i + 1]) || (s[i + 1] is '+' or '-' && i + 2 < s.Length && char.IsAsciiDigit(s[i + 2]))))
                {
                    i += 2;
                    while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
                }
                string number = s[start..i];
                if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || !double.IsFinite(value))
                    throw error($"'{number}' is not a number");
                tokens.Add(new Token('n', number, value));
            }
            else if (char.IsLetter(c))
            {
                int start = i;
                while (i < s.Length && char.IsLetter(s[i])) i++;
                tokens.Add(new Token('w', s[start..i], 0));
            }
            else if (c is '%' or '*' or '×' or '+' or '-' or '−')
            {
                char symbol = c switch { '×' => '*', '−' => '-', _ => c };
                tokens.Add(new Token(symbol, symbol.ToString(), 0));
                i++;
            }
            else if (c is '<' or '>' or '=' or '≤' or '≥')
                throw error("one comparison per constraint: write a range as two constraints, e.g. 'macs >= 0.2*baseline' and 'macs <= 0.5*baseline'");
            else
                throw error($"unexpected '{c}' in the bound; {Expected}");
        }
        return tokens;
    }

    static Constraint ParseBound(ObjectiveKind objective, ConstraintOperator op, List<Token> tokens, Func<string, FormatException> error)
    {
        int p = 0;
        Token? Peek() => p < tokens.Count ? tokens[p] : null;
        bool Is(char kind) => p < tokens.Count && tokens[p].Kind == kind;
        bool IsWord(string word) => p < tokens.Count && tokens[p].IsWord(word);
        string opText = op == ConstraintOperator.AtMost ? "<=" : ">=";
        string name = objective.Name();

        double? Unit(double number, bool offset)
        {
            if (!(Is('w') || Is('%'))) return null;
            string unit = tokens[p++].Text;
            return Convert(objective, number, unit, offset, opText, error);
        }

        void End()
        {
            if (Peek() is { } extra)
                throw error($"unexpected '{extra.Text}' after the bound; {Expected}");
        }

        if (tokens.Any(t => t.IsWord("baseline")))
        {
            double factor = 1;
            if (Is('n'))
            {
                factor = tokens[p++].Number;
                if (Is('%'))
                {
                    factor /= 100;
                    p++;
                    if (IsWord("of")) p++;
                }
                else if (Is('*') || IsWord("x")) p++;
                else throw error("expected '*' or '%' between the number and 'baseline', e.g. '0.4*baseline' or '40% baseline'");
                if (!IsWord("baseline")) throw error($"expected 'baseline' after the factor, e.g. '{name} {opText} 0.4*baseline'");
                p++;
            }
            else if (IsWord("baseline"))
            {
                p++;
                if (Is('*'))
                {
                    p++;
                    if (!Is('n')) throw error("expected a number after 'baseline *', e.g. 'baseline * 0.4'");
                    factor = tokens[p++].Number;
                    if (Is('%')) { factor /= 100; p++; }
                }
            }
            else
                throw error("a bound relative to the baseline reads 'baseline - 0.01', '0.4*baseline' or '40% baseline'");

            double offset = 0;
            if (Is('+') || Is('-'))
            {
                double sign = tokens[p++].Kind == '-' ? -1 : 1;
                if (!Is('n')) throw error($"expected a number after the sign, e.g. '{name} {opText} baseline - 0.01'");
                double number = tokens[p++].Number;
                offset = sign * (Unit(number, offset: true) ?? number);
            }
            End();
            return new Constraint(objective, op, factor, RelativeToBaseline: true, Offset: offset);
        }

        double absoluteSign = 1;
        if (Is('-') || Is('+')) absoluteSign = tokens[p++].Kind == '-' ? -1 : 1;
        if (!Is('n'))
            throw error($"expected a number or a bound relative to 'baseline', e.g. '{name} {opText} {Example(objective)}'");
        double raw = tokens[p++].Number;
        double value = absoluteSign * (Unit(raw, offset: false) ?? raw);
        End();
        return new Constraint(objective, op, value);
    }

    /// <summary>A number written with a unit, in the objective's own unit.</summary>
    internal static double Convert(ObjectiveKind objective, double number, string unit, bool offset, string opText, Func<string, FormatException> error)
    {
        var info = objective.Info();
        if (!QuantityUnits.TryGet(unit, out var quantity, out double factor))
            throw error($"unknown unit '{unit}' for {info.Name}: write {QuantityUnits.Help(info.Quantity)}");
        if (quantity == Quantity.Fraction && info.Quantity != Quantity.Fraction)
            throw error(offset
                ? $"a percentage offset means accuracy points; for {info.Name} scale the baseline instead, e.g. '{info.Name} {opText} 110% baseline'"
                : $"a percentage of {info.Name} is relative to the baseline: write '{info.Name} {opText} {Constraint.Number(number)}% baseline'");
        if (quantity != info.Quantity)
            throw error($"unit '{unit}' does not fit {info.Name}: write {QuantityUnits.Help(info.Quantity)}");
        // Divide for sub-units: 90 / 100 is exactly 0.9, 90 × 0.01 is not.
        return factor >= 1 ? number * factor : number / Math.Round(1 / factor);
    }

    static string Example(ObjectiveKind objective) => objective.Info().Quantity switch
    {
        Quantity.Fraction => "0.9",
        Quantity.Count => "300M",
        Quantity.Bytes => "2 MiB",
        Quantity.Time => "20 ms",
        _ => "50 mJ",
    };
}
