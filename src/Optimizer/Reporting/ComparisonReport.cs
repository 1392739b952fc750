using System.Globalization;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>
/// Writes what a comparison found into its run directory: <c>points.csv</c> (every value with its provenance and
/// fidelity), <c>best.csv</c>, <c>specialisation.csv</c> (with a class subset), plots (PNG and SVG) of accuracy against
/// the amount, energy, compressed size and latency, one line per method (structured solid, unstructured dashed), and
/// <c>report.html</c>.
/// </summary>
public static class ComparisonReport
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>The objectives of every point, in column order.</summary>
    static readonly ObjectiveKind[] Kinds =
        [ObjectiveKind.Accuracy, ObjectiveKind.Macs, ObjectiveKind.Params, ObjectiveKind.DenseBytes, ObjectiveKind.CompressedBytes, ObjectiveKind.Latency, ObjectiveKind.Energy];

    /// <summary>The costs accuracy is plotted against (besides the amount), when the points have them.</summary>
    static readonly ObjectiveKind[] PlottedCosts = [ObjectiveKind.Energy, ObjectiveKind.CompressedBytes, ObjectiveKind.Latency];

    /// <summary>Writes every output; returns the report's path.</summary>
    public static string Write(ComparisonResult result)
    {
        string dir = result.RunDirectory;
        WritePointsCsv(result, Path.Combine(dir, "points.csv"));
        WriteBestCsv(result, Path.Combine(dir, "best.csv"));
        if (result.Specialisation.Count > 0) WriteSpecialisationCsv(result, Path.Combine(dir, "specialisation.csv"));
        var plots = result.Tasks.ToDictionary(t => t, t => PlotsOf(result, t));
        string path = Path.Combine(dir, "report.html");
        Html(result, plots).Save(path);
        return path;
    }

    /// <summary>The plot file name of a task: no suffix for all classes, "-classes-0-2-5" for a subset.</summary>
    public static string PlotName(string name, string task) => task == ComparisonTasks.All ? name : $"{name}-{ComparisonTasks.FileName(task)}";

    static string TaskTitle(string task) => ComparisonTasks.ClassesOf(task) is { } classes ? $"Classes {string.Join(", ", classes)} (specialised)" : "All classes";

    static List<(PlotFiles Files, string Caption)> PlotsOf(ComparisonResult result, string task)
    {
        var plots = new List<(PlotFiles, string)>();
        var baseline = result.Baseline(task);
        var points = result.PointsOf(task).Where(p => !p.Failed).ToList();
        if (baseline is null || points.Count == 0) return plots;
        string dir = Path.Combine(result.RunDirectory, "plots");
        string title = TaskTitle(task);
        string accuracyProvenance = baseline.Values.First(v => v.Kind == ObjectiveKind.Accuracy).Provenance.ToString();

        // Every line starts at the baseline (amount 0): what pruning costs is read off the drop from there.
        List<Series> SeriesOf(Func<ComparisonPoint, double?> x, double scale) => points.GroupBy(p => p.Method)
            .Select(g => (g.Key, Family: g.First().Family, Points: g.Prepend(baseline).Where(p => x(p) is not null).OrderBy(p => p.Amount).ToList()))
            .Where(s => s.Points.Count > 0)
            .Select(s => new Series(s.Key + (s.Family == PruningFamily.Unstructured ? " (unstructured)" : ""),
                                    s.Points.Select(p => x(p)!.Value / scale).ToList(), s.Points.Select(p => 100 * p.Value(ObjectiveKind.Accuracy)!.Value).ToList(),
                                    Dashed: s.Family == PruningFamily.Unstructured))
            .ToList();

        plots.Add((Plots.Lines(Path.Combine(dir, PlotName("accuracy-vs-amount", task)), $"{title}: accuracy against amount",
                                         "amount (fraction of channels removed, or of weights zeroed)",
                                         "validation accuracy (%)", SeriesOf(p => p.Amount, 1)),
                   $"{title}: validation accuracy against the pruning amount, one line per method from the baseline at 0; structured methods solid, " +
                   $"unstructured dashed. Accuracy {accuracyProvenance}. Fidelity: {Fidelity(points)}."));
        foreach (var cost in PlottedCosts)
        {
            if (baseline.Values.FirstOrDefault(v => v.Kind == cost) is not { } reference) continue;
            var (scale, unit) = Scale(cost, reference.Value);
            plots.Add((Plots.Lines(Path.Combine(dir, PlotName($"accuracy-vs-{cost.Name()}", task)), $"{title}: accuracy against {cost.Name()}",
                                             $"{cost.Name()} ({unit}, {reference.Provenance.Kind.ToString().ToLowerInvariant()})", "validation accuracy (%)",
                                             SeriesOf(p => p.Value(cost), scale)),
                       $"{title}: validation accuracy against {cost.Info().Description} ({reference.Provenance}), each line a method from the baseline " +
                       "through increasing amounts; structured solid, unstructured dashed."));
        }
        return plots;
    }

    static string Fidelity(IEnumerable<ComparisonPoint> points) =>
        string.Join("; ", points.Select(p => p.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Fidelity).OfType<string>().Distinct());

    /// <summary>A divisor and unit that make a cost readable on an axis.</summary>
    static (double Scale, string Unit) Scale(ObjectiveKind kind, double typical) => kind.Info().Quantity switch
    {
        Quantity.Count => typical >= 1e9 ? (1e9, "G") : typical >= 1e6 ? (1e6, "M") : typical >= 1e3 ? (1e3, "k") : (1, ""),
        Quantity.Bytes => typical >= 1 << 20 ? (1 << 20, "MiB") : (1 << 10, "KiB"),
        _ => (1, kind.Info().Unit),
    };

    static string Number(double value) => value.ToString("R", Invariant);

    static string Amount(double amount) => amount.ToString("0.###", Invariant);

    static string Family(ComparisonPoint point) => point.Family?.ToString().ToLowerInvariant() ?? "";

    static void WritePointsCsv(ComparisonResult result, string path)
    {
        var headers = new List<string> { "task", "method", "family", "amount", "state" };
        foreach (var kind in Kinds) headers.AddRange([kind.ColumnName(), $"{kind.Name()}_provenance", $"{kind.Name()}_fidelity"]);
        headers.AddRange(["accuracy_test", "accuracy_test_provenance", "params_nonzero", "params_nonzero_provenance", "weight_sparsity", "seconds", "error", "model"]);
        var rows = result.Points.OrderBy(p => result.Tasks.ToList().IndexOf(p.Task)).Select(p =>
        {
            var row = new List<string> { p.Task, p.Method, Family(p), Number(p.Amount), p.Failed ? "failed" : "complete" };
            foreach (var kind in Kinds)
            {
                var v = p.Values.FirstOrDefault(x => x.Kind == kind);
                row.AddRange(v is null ? ["", "", ""] : [Number(v.Value), v.Provenance.ToString(), v.Fidelity]);
            }
            row.AddRange([p.TestAccuracy is { } t ? Number(t.Value) : "", p.TestAccuracy?.Provenance.ToString() ?? ""]);
            row.AddRange([p.NonZeroParams?.ToString(Invariant) ?? "", p.NonZeroParams is null ? "" : Provenance.Computed.ToString()]);
            row.Add(p.WeightSparsity is { } s ? Number(s) : "");
            row.Add(p.Seconds.Values.Sum().ToString("0.###", Invariant));
            row.Add(p.Error ?? "");
            row.Add(p.ModelPath ?? "");
            return (IReadOnlyList<string>)row;
        });
        Csv.Write(path, headers, rows);
    }

    static void WriteBestCsv(ComparisonResult result, string path)
    {
        string[] headers = ["task", "budget", "cost", "limit", "method", "family", "amount", "accuracy", "accuracy_provenance",
                            "best_structured", "best_structured_amount", "best_structured_accuracy",
                            "best_unstructured", "best_unstructured_amount", "best_unstructured_accuracy"];
        var rows = result.BestMethods.Select(w =>
        {
            var accuracy = w.Best?.Values.First(v => v.Kind == ObjectiveKind.Accuracy);
            return (IReadOnlyList<string>)
            [
                w.Task, w.Budget, w.Cost?.Name() ?? "amount", Number(w.Limit), w.Best?.Method ?? "", w.Best is null ? "" : Family(w.Best),
                w.Best is null ? "" : Number(w.Best.Amount), accuracy is null ? "" : Number(accuracy.Value), accuracy?.Provenance.ToString() ?? "",
                w.BestStructured?.Method ?? "", w.BestStructured is null ? "" : Number(w.BestStructured.Amount),
                w.BestStructured?.Value(ObjectiveKind.Accuracy) is { } sa ? Number(sa) : "",
                w.BestUnstructured?.Method ?? "", w.BestUnstructured is null ? "" : Number(w.BestUnstructured.Amount),
                w.BestUnstructured?.Value(ObjectiveKind.Accuracy) is { } ua ? Number(ua) : "",
            ];
        });
        Csv.Write(path, headers, rows);
    }

    static void WriteSpecialisationCsv(ComparisonResult result, string path)
    {
        string[] headers = ["task", "method", "family", "largest_amount_all_classes", "largest_amount_subset", "gain", "threshold_all_classes", "threshold_subset", "tolerance"];
        var rows = result.Specialisation.Select(g => (IReadOnlyList<string>)
        [
            g.Task, g.Method, g.Family.ToString().ToLowerInvariant(), g.AllClassesAmount is { } a ? Number(a) : "", g.SubsetAmount is { } s ? Number(s) : "",
            g.Gain is { } d ? Number(d) : "", result.Threshold(ComparisonTasks.All) is { } ta ? Number(ta) : "",
            result.Threshold(g.Task) is { } ts ? Number(ts) : "", Number(result.Definition.AccuracyTolerance),
        ]);
        Csv.Write(path, headers, rows);
    }

    static HtmlReport Html(ComparisonResult result, Dictionary<string, List<(PlotFiles Files, string Caption)>> plots)
    {
        var d = result.Definition;
        var pruned = result.Points.Where(p => !p.IsBaseline).ToList();
        var methods = pruned.Select(p => p.Method).Distinct().ToList();
        var amounts = pruned.Select(p => p.Amount).Distinct().Order().ToList();
        string fineTuning = d.FineTuneEpochs == 0 ? "none"
            : $"{d.FineTuneEpochs} epoch(s){(d.FineTuneStepsPerEpoch is { } s ? $" of at most {s} steps" : "")}, " +
              $"learning rate {Number(d.LearningRate)}, batch {d.BatchSize}, seed {d.Seed}";
        var report = new HtmlReport("ParetoPrune: pruning methods compared")
            .KeyValues([
                ("model", d.ModelPath), ("data", d.Data), ("methods", string.Join(", ", methods)), ("amounts", string.Join(", ", amounts.Select(Amount))),
                ("structured", "the same fraction of channels removed from every prunable group, chosen by each criterion; " +
                               $"BatchNorm recalibrated on {d.RecalibrationBatches} batches before fine-tuning"),
                ("unstructured", "that fraction of the Conv, Gemm and MatMul weights zeroed by magnitude; the zeros are kept through fine-tuning"),
                ("fine-tuning", fineTuning + " (the same for every method)"),
                ("devices", d.Devices),
                ("points", $"{pruned.Count} ({pruned.Count(p => p.Failed)} failed); status {result.Status.Name()}"),
            ]);

        report.Heading("How each figure was obtained");
        var provenanceRows = result.Baseline(ComparisonTasks.All)?.Values.Select(v => (v.Kind.Name(), $"{v.Provenance} ({v.Fidelity})")).ToList() ?? [];
        provenanceRows.Add(("params (non-zero)", $"{Provenance.Computed}: parameters that are not zero, where unstructured sparsity shows"));
        provenanceRows.Add(("counts and sizes", "MACs and parameters counted on the graph as pruned (dense: zeroed weights still count); " +
                                                "bytes and compressed bytes (gzip) of the deployed file, BatchNorm folded"));
        report.KeyValues(provenanceRows);

        foreach (string task in result.Tasks)
        {
            var baseline = result.Baseline(task);
            report.Heading(TaskTitle(task));
            if (baseline is null)
            {
                report.Paragraph("The baseline of this task has not been evaluated yet: resume the comparison.");
                continue;
            }
            report.Paragraph($"Baseline: {Describe(baseline)}; accuracy {baseline.Values.First(v => v.Kind == ObjectiveKind.Accuracy).Provenance} " +
                             $"({baseline.Values.First(v => v.Kind == ObjectiveKind.Accuracy).Fidelity}).");
            BestTable(report, result, task);
            foreach (var (files, caption) in plots[task]) report.Figure(files, caption);
            PointsTable(report, result, task);
        }

        if (result.Specialisation.Count > 0)
        {
            report.Heading("Task specialisation: how much more each method prunes at equal accuracy");
            foreach (var group in result.Specialisation.GroupBy(g => g.Task))
            {
                string headline = $"Largest amount whose validation accuracy stays within {Number(100 * d.AccuracyTolerance)} points of its own baseline: " +
                                  $"all classes (≥ {Format(ObjectiveKind.Accuracy, result.Threshold(ComparisonTasks.All))}) against {TaskTitle(group.Key)} " +
                                  $"(≥ {Format(ObjectiveKind.Accuracy, result.Threshold(group.Key))}). 0: no amount tested keeps it.";
                var rows = group.Select(g => (IReadOnlyList<string>)[g.Method, g.Family.ToString().ToLowerInvariant(), Optional(g.AllClassesAmount),
                                                                       Optional(g.SubsetAmount), g.Gain is { } x ? (x >= 0 ? "+" : "") + Amount(x) : ""]).ToList();
                var keys = group.Select(g => new double?[] { null, null, g.AllClassesAmount, g.SubsetAmount, g.Gain }).ToList();
                report.Table(headline, ["method", "family", "all classes", "subset", "gain"], rows, keys);
            }
        }
        return report;
    }

    static string Optional(double? amount) => amount is { } a ? Amount(a) : "no point";

    static string Format(ObjectiveKind kind, double? value) => value is { } v ? kind.Format(v) : "";

    static string Describe(ComparisonPoint point) =>
        string.Join(", ", point.Values.Select(v => $"{v.Kind.Name()} {v.Kind.Format(v.Value)}"));

    static void BestTable(HtmlReport report, ComparisonResult result, string task)
    {
        var winners = result.BestMethods.Where(w => w.Task == task).ToList();
        if (winners.Count == 0) return;
        string Cell(ComparisonPoint? p) => p is null ? "none" : $"{p.Method} ({Amount(p.Amount)}, {Format(ObjectiveKind.Accuracy, p.Value(ObjectiveKind.Accuracy))})";
        var rows = winners.Select(w => (IReadOnlyList<string>)[w.Budget, w.Best?.Method ?? "none", Format(ObjectiveKind.Accuracy, w.Best?.Value(ObjectiveKind.Accuracy)),
                                                               w.Best is null ? "" : Amount(w.Best.Amount), Cell(w.BestStructured), Cell(w.BestUnstructured)]).ToList();
        var keys = winners.Select(w => new double?[] { null, null, w.Best?.Value(ObjectiveKind.Accuracy), w.Best?.Amount, w.BestStructured?.Value(ObjectiveKind.Accuracy),
                                                       w.BestUnstructured?.Value(ObjectiveKind.Accuracy) }).ToList();
        report.Table("Best method at each budget (highest validation accuracy): at each amount, and within a fraction of the baseline's MACs, " +
                     "compressed size or energy; click a header to sort",
                     ["budget", "best method", "accuracy", "amount", "best structured", "best unstructured"], rows, keys);
    }

    static void PointsTable(HtmlReport report, ComparisonResult result, string task)
    {
        var points = result.PointsOf(task);
        var present = Kinds.Where(k => points.Any(p => p.Value(k) is not null)).ToList();
        var headers = new List<string> { "method", "family", "amount" };
        headers.AddRange(present.Select(k => k.Name()));
        headers.AddRange(["test accuracy", "params (non-zero)", "weight sparsity", "seconds", "error"]);
        var rows = new List<IReadOnlyList<string>>();
        var keys = new List<double?[]>();
        foreach (var p in points)
        {
            var row = new List<string> { p.Method, Family(p), Amount(p.Amount) };
            row.AddRange(present.Select(k => Format(k, p.Value(k))));
            row.AddRange([Format(ObjectiveKind.Accuracy, p.TestAccuracy?.Value), p.NonZeroParams is { } n ? ObjectiveKind.Params.Format(n) : "",
                          p.WeightSparsity is { } s ? (100 * s).ToString("0.#", Invariant) + " %" : "", p.Seconds.Values.Sum().ToString("0.0", Invariant), p.Error ?? ""]);
            rows.Add(row);
            var key = new List<double?> { null, null, p.Amount };
            key.AddRange(present.Select(p.Value));
            key.AddRange([p.TestAccuracy?.Value, p.NonZeroParams, p.WeightSparsity, p.Seconds.Values.Sum(), null]);
            keys.Add([.. key]);
        }
        report.Table("Every point; click a header to sort", headers, rows, keys);
    }
}
