using System.Collections;
using System.Text.Json;

namespace ParetoPrune.Objectives;

/// <summary>
/// The constraints of a search. Several bounds on one objective are allowed: the tightest of each side holds
/// (<see cref="Bounds"/>); <see cref="Validate"/> finds those that cannot all hold.
/// </summary>
public sealed class ConstraintSet : IReadOnlyList<Constraint>
{
    const string JsonForms = "a string such as \"macs <= 0.4*baseline\" or an object such as " +
                             "{ \"objective\": \"macs\", \"op\": \"<=\", \"value\": 0.4, \"relativeToBaseline\": true }";

    readonly Constraint[] constraints;

    public ConstraintSet(IEnumerable<Constraint> constraints)
    {
        this.constraints = [.. constraints];
        if (this.constraints.Any(c => c is null)) throw new ArgumentException("a constraint is null", nameof(constraints));
    }

    public static ConstraintSet Empty { get; } = new([]);

    public int Count => constraints.Length;
    public Constraint this[int index] => constraints[index];
    public IEnumerator<Constraint> GetEnumerator() => ((IEnumerable<Constraint>)constraints).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The objectives that have at least one bound.</summary>
    public IEnumerable<ObjectiveKind> Objectives => constraints.Select(c => c.Objective).Distinct();

    /// <summary>Reads each text with <see cref="Constraint.Parse"/>.</summary>
    /// <exception cref="FormatException">A text is not a constraint.</exception>
    public static ConstraintSet Parse(IEnumerable<string> texts) => new(texts.Select(Constraint.Parse));

    /// <summary>Reads a JSON array whose items are constraint texts or objects (see <see cref="FromJson(JsonElement)"/>).</summary>
    /// <exception cref="FormatException">Not JSON, or an item is not a constraint; the message names the item.</exception>
    public static ConstraintSet FromJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return FromJson(document.RootElement);
        }
        catch (JsonException e)
        {
            throw new FormatException($"constraints: not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>
    /// Reads a JSON array. Each item is either a constraint text (<c>"energy &lt;= 50 mJ"</c>) or an object with
    /// <c>objective</c>, <c>op</c> (<c>"&lt;="</c> or <c>"&gt;="</c>), <c>value</c>, and optionally
    /// <c>relativeToBaseline</c> (default false: <c>value</c> is then the factor of the baseline), <c>offset</c>
    /// (relative bounds only, added to <c>value × baseline</c>) and <c>unit</c>. The unit applies to <c>value</c> of
    /// an absolute bound and to <c>offset</c> of a relative one; <c>"%"</c> on a relative bound without offset makes
    /// <c>value</c> a percentage of the baseline.
    /// </summary>
    /// <exception cref="FormatException">An item is not a constraint; the message names the item.</exception>
    public static ConstraintSet FromJson(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array)
            throw new FormatException($"constraints must be a JSON array; each item {JsonForms}");
        var list = new List<Constraint>();
        int index = 0;
        foreach (var item in element.EnumerateArray())
        {
            FormatException Error(string message) => new($"constraints[{index}]: {message}");
            switch (item.ValueKind)
            {
                case JsonValueKind.String:
                    try { list.Add(Constraint.Parse(item.GetString()!)); }
                    catch (FormatException e) { throw Error(e.Message); }
                    break;
                case JsonValueKind.Object:
                    list.Add(FromObject(item, Error));
                    break;
                default:
                    throw Error($"expected {JsonForms}, not {item.ValueKind.ToString().ToLowerInvariant()}");
            }
            index++;
        }
        return new ConstraintSet(list);
    }

    static Constraint FromObject(JsonElement item, Func<string, FormatException> error)
    {
        string? objectiveText = null, op = null, unit = null;
        double? value = null, offset = null;
        bool relative = false;
        foreach (var property in item.EnumerateObject())
        {
            var v = property.Value;
            switch (property.Name)
            {
                case "objective": objectiveText = v.ValueKind == JsonValueKind.String ? v.GetString() : throw error("'objective' must be a name such as \"macs\""); break;
                case "op": op = v.ValueKind == JsonValueKind.String ? v.GetString() : throw error("'op' must be \"<=\" or \">=\""); break;
                case "value": value = v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw error("'value' must be a number"); break;
                case "offset": offset = v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw error("'offset' must be a number"); break;
                case "unit": unit = v.ValueKind == JsonValueKind.String ? v.GetString() : throw error("'unit' must be a string such as \"ms\""); break;
                case "relativeToBaseline":
                    relative = v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw error("'relativeToBaseline' must be true or false");
                    break;
                default:
                    throw error($"unknown field '{property.Name}': the fields are objective, op, value, relativeToBaseline, offset and unit");
            }
        }
        if (objectiveText is null) throw error("'objective' is missing");
        if (!ObjectiveCatalog.TryParse(objectiveText, out var objective))
            throw error($"unknown objective '{objectiveText}': known objectives are {ObjectiveCatalog.KnownNames}");
        var comparison = op switch
        {
            "<=" or "≤" => ConstraintOperator.AtMost,
            ">=" or "≥" => ConstraintOperator.AtLeast,
            null => throw error("'op' is missing: \"<=\" or \">=\""),
            _ => throw error($"'op' is '{op}': write \"<=\" or \">=\" (bounds are inclusive)"),
        };
        if (value is not { } number) throw error("'value' is missing");
        if (offset is not null && !relative) throw error("'offset' is only for a bound relative to the baseline (\"relativeToBaseline\": true)");

        string opText = comparison == ConstraintOperator.AtMost ? "<=" : ">=";
        double Convert(double n, bool isOffset) => unit is null ? n : ConstraintSyntax.Convert(objective, n, unit, isOffset, opText, error);
        try
        {
            if (!relative) return new Constraint(objective, comparison, Convert(number, isOffset: false));
            if (unit == "%" && offset is null) return new Constraint(objective, comparison, number / 100, RelativeToBaseline: true);
            return new Constraint(objective, comparison, number, RelativeToBaseline: true, Offset: offset is { } o ? Convert(o, isOffset: true) : 0);
        }
        catch (ArgumentException e)
        {
            throw error(e.Message);
        }
    }

    /// <summary>
    /// Bounds that cannot hold, alone or together: a lower bound above an upper bound on the same objective, an accuracy
    /// above 1 or below 0, a cost bounded at or below 0. Relative bounds are compared when <paramref name="baseline"/>
    /// has their objective, or without it where the answer holds for any positive baseline (<c>0.3*baseline</c> against
    /// <c>0.5*baseline</c>). Two bounds on the same side are never a problem: the tighter holds.
    /// </summary>
    /// <returns>One message per problem, naming the constraints; empty when the set is consistent.</returns>
    public IReadOnlyList<string> Validate(IReadOnlyDictionary<ObjectiveKind, double>? baseline = null)
    {
        baseline ??= new Dictionary<ObjectiveKind, double>();
        var problems = new List<string>();
        foreach (var c in constraints)
        {
            var info = c.Objective.Info();
            double? bound = Known(c, baseline);
            string where = c.RelativeToBaseline && bound is { } b ? $" (with the baseline: {c.Objective.Format(b)})" : "";
            if (info.Quantity == Quantity.Fraction && !c.IsUpperBound && bound > 1)
                problems.Add($"'{c}' can never be met{where}: {info.Name} is a fraction, at most 1 (for ninety per cent write 0.9 or 90%)");
            else if (info.Quantity == Quantity.Fraction && c.IsUpperBound && bound < 0)
                problems.Add($"'{c}' can never be met{where}: {info.Name} is a fraction, at least 0");
            // Unresolved, Value·b + Offset ≤ 0 for every b > 0 exactly when both are ≤ 0.
            else if (!info.IsMaximised && c.IsUpperBound && (bound <= 0 || (bound is null && c.Value <= 0 && c.Offset <= 0)))
                problems.Add($"'{c}' can never be met{where}: {info.Name} of a model is always above 0");
        }

        foreach (var group in constraints.GroupBy(c => c.Objective))
            foreach (var lower in group.Where(c => !c.IsUpperBound))
                foreach (var upper in group.Where(c => c.IsUpperBound))
                {
                    if (Known(lower, baseline) is { } lo && Known(upper, baseline) is { } up)
                    {
                        if (lo > up)
                            problems.Add($"'{lower}' and '{upper}' contradict each other: the lower bound {group.Key.Format(lo)} is above the upper bound {group.Key.Format(up)}");
                    }
                    else if (lower.RelativeToBaseline && upper.RelativeToBaseline)
                    {
                        // lower − upper = (f_l − f_u)·b + (o_l − o_u) > 0 for every b > 0.
                        double factor = lower.Value - upper.Value, offset = lower.Offset - upper.Offset;
                        if (factor >= 0 && offset >= 0 && (factor > 0 || offset > 0))
                            problems.Add($"'{lower}' and '{upper}' contradict each other: the lower bound is above the upper bound whatever the baseline");
                    }
                }
        return problems;
    }

    /// <summary>The tightest lower and upper bound on an objective, resolved against the baseline; null where none.</summary>
    public (double? Lower, double? Upper) Bounds(ObjectiveKind objective, IReadOnlyDictionary<ObjectiveKind, double> baseline)
    {
        double? lower = null, upper = null;
        foreach (var c in constraints.Where(c => c.Objective == objective))
        {
            double bound = c.Resolve(baseline);
            if (c.IsUpperBound) upper = Math.Min(upper ?? double.PositiveInfinity, bound);
            else lower = Math.Max(lower ?? double.NegativeInfinity, bound);
        }
        return (lower, upper);
    }

    /// <summary>
    /// The sum of <see cref="Constraint.Violation"/> over all constraints: 0 when all hold. Each term is normalised by
    /// the baseline's value of its objective, so the sum adds like with like (fractions of the unpruned model); it is
    /// the constraint violation of Deb's constraint domination and Optuna's <c>constraints_func</c>.
    /// </summary>
    /// <exception cref="ArgumentException">A constrained objective has no value.</exception>
    public double TotalViolation(IReadOnlyDictionary<ObjectiveKind, double> values, IReadOnlyDictionary<ObjectiveKind, double> baseline) =>
        constraints.Sum(c => c.Violation(ValueFor(c, values), baseline));

    /// <summary>The constraints that <paramref name="values"/> miss.</summary>
    public IReadOnlyList<Constraint> Violated(IReadOnlyDictionary<ObjectiveKind, double> values, IReadOnlyDictionary<ObjectiveKind, double> baseline) =>
        [.. constraints.Where(c => c.Violation(ValueFor(c, values), baseline) > 0)];

    public override string ToString() => string.Join("; ", constraints.Select(c => c.ToString()));

    static double ValueFor(Constraint c, IReadOnlyDictionary<ObjectiveKind, double> values) =>
        values.TryGetValue(c.Objective, out double v) ? v
            : throw new ArgumentException($"no {c.Objective.Name()} value to check '{c}' against", nameof(values));

    static double? Known(Constraint c, IReadOnlyDictionary<ObjectiveKind, double> baseline) =>
        !c.RelativeToBaseline ? c.Value : baseline.TryGetValue(c.Objective, out _) ? c.Resolve(baseline) : null;
}
