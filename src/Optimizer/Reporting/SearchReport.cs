using System.Globalization;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>
/// Writes what a search found into its run directory: <c>trials.csv</c>, <c>pareto.csv</c>, plots (PNG and SVG) of the
/// front for accuracy against each cost, of the hypervolume against trials and of the kept filters, and <c>report.html</c>.
/// </summary>
public static class SearchReport
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Writes every output; returns the report's path.</summary>
    public static string Write(PruningSearchResult result)
    {
        string dir = result.RunDirectory;
        WriteTrialsCsv(result, Path.Combine(dir, "trials.csv"));
        WriteParetoCsv(result, Path.Combine(dir, "pareto.csv"));
        var plots = new List<(PlotFiles Files, string Caption)>();
        foreach (var cost in result.Definition.Objectives.Where(o => o != ObjectiveKind.Accuracy))
            if (result.Definition.Objectives.Contains(ObjectiveKind.Accuracy))
                plots.Add((FrontPlot(result, cost, Path.Combine(dir, "plots", $"front-accuracy-{cost.Name()}")),
                           $"Accuracy against {cost.Name()}. Blue, connected: the front of fine-tuned, exported models " +
                           $"({result.Definition.Fidelity.FidelityOf(SearchStage.Final)}), the models to choose from; grey: fine-tuned but dominated; " +
                           $"hollow: lower-fidelity estimates, not deployable accuracy (circles: screening, {result.Definition.Fidelity.FidelityOf(SearchStage.Screening)}; " +
                           $"squares: promotion, {result.Definition.Fidelity.FidelityOf(SearchStage.Promotion)}); red ×: infeasible; dashed: constraints."));
        plots.Add((HypervolumePlot(Path.Combine(dir, "plots", "hypervolume"), [(result.Definition.Sampler, result.HypervolumeTrace)]),
                   "Hypervolume of the feasible screening front after each trial (objectives normalised by the baseline)."));
        if (result.Front.Count > 0)
            plots.Add((KeptPlot(result, Path.Combine(dir, "plots", "kept-filters")), "Kept channels per search dimension (a channel group, or tied groups of one width): the original model and each exported model."));
        if (result.Sensitivity is { } drops)
            plots.Add((Plots.GroupedBars(Path.Combine(dir, "plots", "layer-sensitivity"), "Accuracy lost by cutting one dimension alone", "accuracy lost (points)",
                                         result.Dimensions.Select(d => d.Name).ToList(), [("probe", drops.Select(d => 100 * d).ToList())],
                                         xLabel: "search dimension (a channel group, or tied groups)"),
                       "The sensitivity prior's probes: the validation accuracy each search dimension lost when cut alone to its count under " +
                       (result.Definition.SensitivityPrior ? $"uniform pruning at the bound and fine-tuned {result.Definition.Fidelity.ScreeningSteps} steps. "
                                                                     : "uniform pruning at the bound and recalibrated, not trained. ") +
                       "The search keeps more of what loses most."));
        string path = Path.Combine(dir, "report.html");
        Html(result, plots).Save(path);
        return path;
    }

    static void RecommendationCard(HtmlReport report, Recommendation r) => report.Card("Recommended model", card =>
    {
        if (r.Model is not { } model)
        {
            card.Paragraph($"Nothing to recommend: {r.Why}.");
            return;
        }
        var accuracy = r.Accuracy!;
        card.Paragraph($"Deploy trial {model.Label} ({Path.GetFileName(model.ModelPath)}): the most accurate exported model that meets every constraint. " +
                       $"Validation accuracy {Format(ObjectiveKind.Accuracy, accuracy.Model)} against the baseline's {Format(ObjectiveKind.Accuracy, accuracy.Baseline)} " +
                       $"({(accuracy.Model - accuracy.Baseline) * 100:+0.0;−0.0} points)" +
                       (r.TestAccuracy is { } test ? $"; test accuracy {Format(ObjectiveKind.Accuracy, test)}." : "."));
        if (r.Uniform is { } uniform) card.Paragraph(uniform.Describe());
        else if (r.UniformAbsence is { } absence) card.Paragraph(char.ToUpperInvariant(absence[0]) + absence[1..] + ".");
        var rows = r.Savings.Concat(r.Device).Select(c => (IReadOnlyList<string>)[
            c.Kind.Info().Label, c.Where ?? "the model", Format(c.Kind, c.Baseline), Format(c.Kind, c.Model), Recommendation.Describe(c), c.Provenance.ToString()]).ToList();
        card.Table("Against the baseline", ["figure", "on", "baseline", "recommended", "saving", "how obtained"], rows,
                   r.Savings.Concat(r.Device).Select(c => new double?[] { null, null, c.Baseline, c.Model, c.Factor, null }).ToList());
        if (r.HostLatencyNote is { } note) card.Paragraph(char.ToUpperInvariant(note[0]) + note[1..] + ".");
        card.Code("Take it out of the run", r.ExportCommand);
        card.Code("Use it from an ML.NET app (the ParetoPrune.MLNet package)", r.CSharp);
    });

    /// <summary>Hypervolume against trial number, one line per run (e.g. per sampler when comparing them).</summary>
    public static PlotFiles HypervolumePlot(string path, IReadOnlyList<(string Label, IReadOnlyList<double> Trace)> runs) =>
        Plots.Lines(path, "Hypervolume of the screening front", "trial (numbered as in the tables)", "hypervolume (normalised)",
            runs.Select(r => HypervolumeSeries(r.Label, r.Trace)).ToList());

    /// <summary>The hypervolume after each trial against that trial's number (from 0, as the tables number them).</summary>
    internal static Series HypervolumeSeries(string label, IReadOnlyList<double> trace) =>
        new(label, trace.Select((_, i) => (double)i).ToArray(), trace);

    /// <summary>
    /// Accuracy against one cost. The front is the fine-tuned one (the final stage: the exported models); screened and
    /// promoted trials are hollow, labelled with their fidelity, since their accuracy is not what a user deploys.
    /// </summary>
    static PlotFiles FrontPlot(PruningSearchResult result, ObjectiveKind cost, string path)
    {
        var (scale, unit) = Scale(cost, result.Baseline.Value(cost));
        var points = new List<PlotPoint>();
        var finals = result.Trials.Where(t => t.At(SearchStage.Final) is not null).ToList();
        foreach (var t in result.Trials)
        {
            if (t.At(SearchStage.Final) is not null) continue;
            var (stage, role) = t.At(SearchStage.Promotion) is not null ? (SearchStage.Promotion, PointRole.Promoted) : (SearchStage.Screening, PointRole.Screened);
            if (t.At(stage) is not { } r) continue;
            // Screening-infeasible trials break a bound that holds at every fidelity (a cost): marked whatever their stage.
            bool infeasible = t.At(SearchStage.Screening) is { } s && result.Violation(s) > 0;
            points.Add(new PlotPoint(r.Value(cost) / scale, 100 * r.Value(ObjectiveKind.Accuracy), infeasible ? PointRole.Infeasible : role));
        }
        // The two-objective front of this plot among the exported models (float, and INT8 where the study quantizes) that
        // meet every constraint.
        string Name(Trial t) => $"trial {t.Number}" + (t.Number == result.UniformBaseline?.Trial ? " (uniform)" : "");
        var exported = finals.SelectMany(t => new[] { (t.At(SearchStage.Final)!, Name(t)), (t.At(SearchStage.Final)!.Int8, $"{Name(t)} int8") })
                             .Where(e => e.Item1 is not null).ToList();
        var results = exported.Select(e => e.Item1!).ToList();
        var feasible = results.Select(r => result.Violation(r) == 0).ToArray();
        var feasibleIndices = Enumerable.Range(0, results.Count).Where(i => feasible[i]).ToList();
        var front = NonDominatedSorting.FirstFront(feasibleIndices.Select(i => new[] { -results[i].Value(ObjectiveKind.Accuracy), results[i].Value(cost) }).ToList())
            .Select(k => feasibleIndices[k]).ToHashSet();
        for (int i = 0; i < results.Count; i++)
            points.Add(new PlotPoint(results[i].Value(cost) / scale, 100 * results[i].Value(ObjectiveKind.Accuracy),
                                     !feasible[i] ? PointRole.Infeasible : front.Contains(i) ? PointRole.Front : PointRole.Dominated,
                                     exported[i].Item2)); // every exported model named, on the front or not
        points.Add(new PlotPoint(result.Baseline.Value(cost) / scale, 100 * result.Baseline.Value(ObjectiveKind.Accuracy), PointRole.Baseline, "baseline"));
        var fidelity = result.Definition.Fidelity;
        var legends = new Dictionary<PointRole, string>
        {
            [PointRole.Screened] = fidelity.ScreeningIsRecalibrationOnly ? "screening (BN recalibration only)" : $"screening ({fidelity.FidelityOf(SearchStage.Screening)})",
            [PointRole.Promoted] = $"promotion ({fidelity.FidelityOf(SearchStage.Promotion)})",
            [PointRole.Front] = $"fine-tuned front ({fidelity.FidelityOf(SearchStage.Final)}), exported",
            [PointRole.Dominated] = "fine-tuned, dominated (exported)",
        };

        var baseline = result.Baseline.ToDictionary();
        var lines = new List<ReferenceLine>();
        foreach (var c in result.Constraints)
        {
            if (c.Objective == cost) lines.Add(new ReferenceLine(c.Resolve(baseline) / scale, Vertical: true, c.ToString()));
            if (c.Objective == ObjectiveKind.Accuracy) lines.Add(new ReferenceLine(100 * c.Resolve(baseline), Vertical: false, c.ToString() + " (after fine-tuning)"));
        }
        var provenance = result.Baseline.Values.First(v => v.Kind == cost).Provenance;
        return Plots.ParetoScatter(path, $"Accuracy against {cost.Name()}", AxisTitle(cost, unit, provenance), "validation accuracy (%)", points, lines,
                                   legends: legends, subtitle: $"{cost.Name()}: {provenance}");
    }

    static PlotFiles KeptPlot(PruningSearchResult result, string path)
    {
        var names = result.Dimensions.Select(d => d.Name).ToList();
        var sizes = result.Dimensions.Select(d => (double)d.Size).ToList();
        var bars = new List<(string, IReadOnlyList<double>)> { ("original", sizes) };
        foreach (var c in result.Front.DistinctBy(c => c.Trial).Take(4)) bars.Add(($"trial {c.Trial}", c.Kept.Select(k => (double)k).ToList()));
        return Plots.GroupedBars(path, "Kept channels per search dimension", "channels kept", names, bars, xLabel: "search dimension (a channel group, or tied groups)");
    }

    /// <summary>"energy per inference (mJ), Raspberry Pi 4B, estimated": what, in which unit, and in a word where from
    /// (the whole provenance goes in the subtitle).</summary>
    internal static string AxisTitle(ObjectiveKind kind, string unit, Provenance provenance) =>
        $"{kind.Info().Label}{(unit.Length > 0 ? $" ({unit})" : "")}" + (provenance.Kind == ProvenanceKind.Computed ? "" : $", {provenance.Short}");

    /// <summary>A divisor and unit that make a cost readable on an axis.</summary>
    static (double Scale, string Unit) Scale(ObjectiveKind kind, double typical) => kind.Info().Quantity switch
    {
        Quantity.Count => typical >= 1e9 ? (1e9, "G") : typical >= 1e6 ? (1e6, "M") : typical >= 1e3 ? (1e3, "k") : (1, ""),
        Quantity.Bytes => typical >= 1 << 20 ? (1 << 20, "MiB") : (1 << 10, "KiB"),
        _ => (1, kind.Info().Unit),
    };

    static string Format(ObjectiveKind kind, double value) => kind.Format(value);

    static void WriteTrialsCsv(PruningSearchResult result, string path)
    {
        var objectives = result.Definition.Objectives;
        var headers = new List<string> { "trial", "state", "sampler", "kept", "stage" };
        headers.AddRange(objectives.Select(o => $"{o.ColumnName()}_screening"));
        headers.AddRange(["accuracy_promotion", "accuracy_final", "accuracy_test", "feasible_screening", "seconds", "error", "model", "kernel_notes"]);
        var rows = result.Trials.Select(t =>
        {
            var screening = t.At(SearchStage.Screening);
            var row = new List<string> { t.Number.ToString(Invariant), t.State.ToString().ToLowerInvariant(), t.Sampler, string.Join(";", t.Kept),
                                         t.Latest?.Stage.ToString().ToLowerInvariant() ?? "" };
            row.AddRange(objectives.Select(o => screening?.Values.FirstOrDefault(v => v.Kind == o)?.Value.ToString("R", Invariant) ?? ""));
            row.Add(t.At(SearchStage.Promotion)?.Value(ObjectiveKind.Accuracy).ToString("R", Invariant) ?? "");
            row.Add(t.At(SearchStage.Final)?.Value(ObjectiveKind.Accuracy).ToString("R", Invariant) ?? "");
            row.Add(t.At(SearchStage.Final)?.TestAccuracy?.Value.ToString("R", Invariant) ?? "");
            row.Add(screening is null ? "" : (result.Violation(screening) == 0).ToString().ToLowerInvariant());
            row.Add(t.Stages.Sum(s => s.TotalSeconds).ToString("0.###", Invariant));
            row.Add(t.Error ?? "");
            row.Add(t.At(SearchStage.Final)?.ModelPath ?? "");
            // A stage the guard re-ran on ATen after a oneDNN fault says so (the result is the reference's).
            row.Add(string.Join(" | ", t.Stages.SelectMany(s => (s.KernelNotes ?? []).Select(n => $"{s.Stage.ToString().ToLowerInvariant()}: {n}"))));
            return (IReadOnlyList<string>)row;
        });
        Csv.Write(path, headers, rows);
    }

    static void WriteParetoCsv(PruningSearchResult result, string path)
    {
        var objectives = result.Definition.Objectives;
        var headers = new List<string> { "trial", "variant", "kept", "feasible" };
        foreach (var o in objectives) headers.AddRange([o.ColumnName(), $"{o.Name()}_provenance", $"{o.Name()}_fidelity"]);
        headers.AddRange(["accuracy_test", "model"]);
        var rows = result.Front.Select(c =>
        {
            var row = new List<string> { c.Trial.ToString(Invariant), c.Int8 ? "int8" : "float", string.Join(";", c.Kept), c.Feasible.ToString().ToLowerInvariant() };
            foreach (var o in objectives)
            {
                var v = c.Values.First(x => x.Kind == o);
                row.AddRange([v.Value.ToString("R", Invariant), v.Provenance.ToString(), v.Fidelity]);
            }
            row.Add(c.TestAccuracy?.Value.ToString("R", Invariant) ?? "");
            row.Add(Path.GetRelativePath(result.RunDirectory, c.ModelPath));
            return (IReadOnlyList<string>)row;
        });
        Csv.Write(path, headers, rows);
    }

    static HtmlReport Html(PruningSearchResult result, List<(PlotFiles Files, string Caption)> plots)
    {
        var d = result.Definition;
        var objectives = d.Objectives;
        int failed = result.Trials.Count(t => t.State == TrialState.Failed);
        var report = new HtmlReport($"ParetoPrune search: {d.Name}");
        if (result.Unfinished is { } unfinished)
            report.Paragraph($"{char.ToUpperInvariant(unfinished[0])}{unfinished[1..]}: the front and the recommended model below are provisional; " +
                             $"resume it to finish: paretoprune search --resume --out {result.RunDirectory}");
        if (result.Definition.ValidationCaveat is { } caveat)
            report.Paragraph($"Validation accuracy may be inflated: {caveat}. Candidates were still ranked on it; the test accuracy of exported models does not have this problem when the test set is unseen.");
        RecommendationCard(report, Recommendation.For(result));

        report.Heading("The study");
        report.KeyValues([
                ("model", d.ModelPath), ("data", d.Data), ("objectives", string.Join(", ", objectives.Select(o => o.Name()))),
                ("constraints", d.Constraints.Count == 0 ? "none" : string.Join("; ", d.Constraints)),
                ("sampler", $"{d.Sampler} (seed {d.Seed}), channel criterion {d.Criterion}"),
                ("trials", $"{result.Trials.Count} of {d.Trials} ({failed} failed); status {result.Status.Name()}"),
                ("fidelity", $"screening: {d.Fidelity.FidelityOf(SearchStage.Screening)}; promotion: {d.Fidelity.PromoteCount} × {d.Fidelity.FidelityOf(SearchStage.Promotion)}; " +
                             $"final: up to {d.Fidelity.FinalCount} × {d.Fidelity.FidelityOf(SearchStage.Final)}"),
                ("devices", d.Devices),
            ]);

        report.Heading("How each figure was obtained");
        report.KeyValues(result.Baseline.Values.Select(v => (v.Kind.Name(), $"{v.Provenance}; baseline {Format(v.Kind, v.Value)} ({v.Fidelity})")).ToList());

        report.Heading("Exported models (final front)");
        if (result.Front.Count == 0)
            report.Paragraph(result.Status == StudyStatus.Finished ? "No model reached the final stage." : "The search has not reached the final stage yet: resume it to export models.");
        else
        {
            if (result.Front.All(c => !c.Feasible)) report.Paragraph("No exported model meets every constraint; the least violating ones are shown.");
            var headers = new List<string> { "trial", "feasible" };
            headers.AddRange(objectives.Select(o => o.Name()));
            headers.AddRange(["test accuracy", "model"]);
            var rows = new List<IReadOnlyList<string>>();
            var keys = new List<double?[]>();
            foreach (var c in result.Front)
            {
                var row = new List<string> { c.Label + (c.Trial == result.UniformBaseline?.Trial && !c.Int8 ? " (uniform pruning)" : ""), c.Feasible ? "yes" : "no" };
                row.AddRange(objectives.Select(o => Format(o, c.Value(o))));
                row.Add(c.TestAccuracy is { } t ? Format(ObjectiveKind.Accuracy, t.Value) : "");
                row.Add(Path.GetRelativePath(result.RunDirectory, c.ModelPath));
                rows.Add(row);
                var key = new List<double?> { c.Trial, c.Feasible ? 1 : 0 };
                key.AddRange(objectives.Select(o => (double?)c.Value(o)));
                key.AddRange([c.TestAccuracy?.Value, null]);
                keys.Add([.. key]);
            }
            var baselineRow = new List<string> { "baseline", "" };
            baselineRow.AddRange(objectives.Select(o => Format(o, result.Baseline.Value(o))));
            baselineRow.AddRange(["", d.ModelPath]);
            rows.Add(baselineRow);
            keys.Add([null, null, .. objectives.Select(o => (double?)result.Baseline.Value(o)), null, null]); // sorts among the models by each figure
            report.Table($"Fine-tuned ({d.Fidelity.FidelityOf(SearchStage.Final)}), validation accuracy; click a header to sort", headers, rows, keys);
        }

        report.Heading("How well the cheap stages ranked candidates");
        report.Paragraph("Spearman's rank correlation between a trial's validation accuracy at a cheaper stage and after longer fine-tuning. " +
                         "Near 1: the cheap stage orders candidates as fine-tuning does, so the sampler and the promotion steered well; near 0: it " +
                         "carried no signal (raise --screening-steps). Few pairs make ρ noisy.");
        report.Table("Rank correlation between stages", ["from", "to", "trials at both", "Spearman ρ"],
            result.FidelityCorrelations.Select(c => (IReadOnlyList<string>)[
                $"{c.From.ToString().ToLowerInvariant()} ({d.Fidelity.FidelityOf(c.From)})", $"{c.To.ToString().ToLowerInvariant()} ({d.Fidelity.FidelityOf(c.To)})",
                c.Pairs.ToString(Invariant), c.Spearman is { } rho ? rho.ToString("0.00", Invariant) : "—"]).ToList(),
            result.FidelityCorrelations.Select(c => new double?[] { (double)c.From, (double)c.To, c.Pairs, c.Spearman }).ToList());

        report.Heading("Plots");
        foreach (var (files, caption) in plots) report.Figure(files, caption);

        report.Heading("All trials");
        var trialHeaders = new List<string> { "trial", "state", "stage", $"kept channels ({string.Join(", ", result.Dimensions.Select(x => x.Name))})" };
        trialHeaders.AddRange(objectives.Select(o => $"{o.Name()} (screening)"));
        trialHeaders.AddRange(["accuracy (promotion)", "accuracy (final)", "seconds", "error"]);
        var trialRows = new List<IReadOnlyList<string>>();
        var trialKeys = new List<double?[]>();
        foreach (var t in result.Trials)
        {
            var s = t.At(SearchStage.Screening);
            var row = new List<string> { t.Number.ToString(Invariant), t.State.ToString().ToLowerInvariant(), t.Latest?.Stage.ToString().ToLowerInvariant() ?? "",
                                         string.Join(" ", t.Kept) };
            row.AddRange(objectives.Select(o => s?.Values.FirstOrDefault(v => v.Kind == o) is { } v ? Format(o, v.Value) : ""));
            double? promoted = t.At(SearchStage.Promotion)?.Value(ObjectiveKind.Accuracy), final = t.At(SearchStage.Final)?.Value(ObjectiveKind.Accuracy);
            row.Add(promoted is { } p ? Format(ObjectiveKind.Accuracy, p) : "");
            row.Add(final is { } f ? Format(ObjectiveKind.Accuracy, f) : "");
            double seconds = t.Stages.Sum(x => x.TotalSeconds);
            row.Add(seconds.ToString("0.0", Invariant));
            row.Add(t.Error ?? "");
            trialRows.Add(row);
            var key = new List<double?> { t.Number, null, t.Latest is null ? null : (double)t.Latest.Stage, t.Kept.Sum() };
            key.AddRange(objectives.Select(o => s?.Values.FirstOrDefault(v => v.Kind == o)?.Value));
            key.AddRange([promoted, final, seconds, null]);
            trialKeys.Add([.. key]);
        }
        report.Table("Every trial at its screening fidelity; click a header to sort", trialHeaders, trialRows, trialKeys);
        return report;
    }
}
