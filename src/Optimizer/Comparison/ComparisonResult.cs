using System.Globalization;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>The most accurate point within a budget: an amount, or a cost no higher than a fraction of the baseline's.</summary>
/// <param name="Cost">Null for an amount budget (points pruned at exactly <see cref="Limit"/>).</param>
/// <param name="Limit">The amount, or the fraction of the baseline's cost.</param>
/// <param name="Best">The most accurate point of either family; null when none fits the budget.</param>
public sealed record BudgetWinner(string Task, ObjectiveKind? Cost, double Limit, ComparisonPoint? Best, ComparisonPoint? BestStructured,
                                  ComparisonPoint? BestUnstructured)
{
    public string Budget => Cost is { } kind
        ? $"{kind.Name()} ≤ {(Limit * 100).ToString("0.#", CultureInfo.InvariantCulture)} % of the baseline"
        : $"amount {Limit.ToString("0.###", CultureInfo.InvariantCulture)}";
}

/// <summary>
/// How far one method can prune a class subset compared with all classes: the largest amount whose validation accuracy
/// stays within the tolerance of its own task's baseline (0 when no amount does; null when the method has no point there).
/// </summary>
public sealed record SpecialisationGain(string Task, string Method, PruningFamily Family, double? AllClassesAmount, double? SubsetAmount)
{
    /// <summary>How much more the subset can be pruned at equal accuracy (amount on the subset − amount on all classes).</summary>
    public double? Gain => AllClassesAmount is { } all && SubsetAmount is { } subset ? subset - all : null;
}

/// <summary>What a comparison found, read from its run directory: every point, the best method per budget and, with a
/// class subset, how much more each method prunes the specialised model.</summary>
public sealed class ComparisonResult
{
    /// <summary>Cost budgets of the "best method" table, as fractions of the baseline's cost.</summary>
    public static readonly IReadOnlyList<double> BudgetFractions = [0.75, 0.5, 0.25, 0.1];

    ComparisonResult(string directory, ComparisonDefinition definition, StudyStatus status, IReadOnlyList<ComparisonPoint> points)
    {
        RunDirectory = directory;
        Definition = definition;
        Status = status;
        Points = points;
        Tasks = points.Select(p => p.Task).Distinct().OrderBy(t => t == ComparisonTasks.All ? 0 : 1).ToList();
        BestMethods = Tasks.SelectMany(Winners).ToList();
        Specialisation = Tasks.Where(t => t != ComparisonTasks.All).SelectMany(Gains).ToList();
    }

    public string RunDirectory { get; }
    public ComparisonDefinition Definition { get; }

    /// <summary>Finished, stopped (resume to continue) or running.</summary>
    public StudyStatus Status { get; }

    /// <summary>Every stored point, baselines included, in the order they were evaluated.</summary>
    public IReadOnlyList<ComparisonPoint> Points { get; }

    /// <summary><see cref="ComparisonTasks.All"/> first, then the class subsets.</summary>
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>The best point per amount and per cost budget (<see cref="BudgetFractions"/> of MACs, compressed bytes, energy), by task.</summary>
    public IReadOnlyList<BudgetWinner> BestMethods { get; }

    /// <summary>Per subset task and method, the largest amount at equal accuracy on all classes and on the subset.</summary>
    public IReadOnlyList<SpecialisationGain> Specialisation { get; }

    public ComparisonPoint? Baseline(string task) => Points.FirstOrDefault(p => p.Task == task && p.IsBaseline && !p.Failed);

    /// <summary>The pruned points of a task, by method (first evaluated first) and amount.</summary>
    public IReadOnlyList<ComparisonPoint> PointsOf(string task)
    {
        var order = Points.Select(p => p.Method).Distinct().ToList();
        return Points.Where(p => p.Task == task && !p.IsBaseline).OrderBy(p => order.IndexOf(p.Method)).ThenBy(p => p.Amount).ToList();
    }

    /// <summary>The lowest accuracy that counts as equal to the baseline's on a task (baseline − tolerance).</summary>
    public double? Threshold(string task) => Baseline(task)?.Value(ObjectiveKind.Accuracy) - Definition.AccuracyTolerance;

    /// <summary>The largest amount at which <paramref name="method"/> keeps the task's accuracy within the tolerance (0: none does);
    /// null when the method has no evaluated point on the task.</summary>
    public double? LargestAmountAtEqualAccuracy(string task, string method)
    {
        var points = PointsOf(task).Where(p => p.Method == method && !p.Failed).ToList();
        if (points.Count == 0 || Threshold(task) is not { } threshold) return null;
        return points.Where(p => p.Value(ObjectiveKind.Accuracy) >= threshold - 1e-12).Select(p => p.Amount).DefaultIfEmpty(0).Max();
    }

    /// <summary>Opens the run directory of a comparison (finished or not).</summary>
    public static ComparisonResult Load(string runDirectory)
    {
        using var store = ComparisonStore.Open(Path.Combine(runDirectory, MethodComparison.StoreFile));
        return Load(store, Path.GetFullPath(runDirectory));
    }

    internal static ComparisonResult Load(ComparisonStore store, string directory) => new(directory, store.Definition, store.Status, store.Points());

    IEnumerable<BudgetWinner> Winners(string task)
    {
        var points = PointsOf(task).Where(p => !p.Failed && p.Value(ObjectiveKind.Accuracy) is not null).ToList();
        foreach (double amount in points.Select(p => p.Amount).Distinct().Order())
            yield return Winner(task, null, amount, points.Where(p => p.Amount == amount));
        if (Baseline(task) is not { } baseline) yield break;
        foreach (var cost in new[] { ObjectiveKind.Macs, ObjectiveKind.CompressedBytes, ObjectiveKind.Energy })
        {
            if (baseline.Value(cost) is not { } full) continue;
            foreach (double fraction in BudgetFractions)
                yield return Winner(task, cost, fraction, points.Where(p => p.Value(cost) <= fraction * full));
        }
    }

    /// <summary>The most accurate of the points; fewer MACs, then the method's name, break ties.</summary>
    static BudgetWinner Winner(string task, ObjectiveKind? cost, double limit, IEnumerable<ComparisonPoint> candidates)
    {
        ComparisonPoint? Best(IEnumerable<ComparisonPoint> points) => points
            .OrderByDescending(p => p.Value(ObjectiveKind.Accuracy)).ThenBy(p => p.Value(ObjectiveKind.Macs)).ThenBy(p => p.Method, StringComparer.Ordinal)
            .FirstOrDefault();
        var list = candidates.ToList();
        return new BudgetWinner(task, cost, limit, Best(list), Best(list.Where(p => p.Family == PruningFamily.Structured)),
                                Best(list.Where(p => p.Family == PruningFamily.Unstructured)));
    }

    IEnumerable<SpecialisationGain> Gains(string task) =>
        PointsOf(task).Select(p => (p.Method, Family: p.Family!.Value)).Distinct()
            .Select(m => new SpecialisationGain(task, m.Method, m.Family, LargestAmountAtEqualAccuracy(ComparisonTasks.All, m.Method),
                                                LargestAmountAtEqualAccuracy(task, m.Method)));
}
