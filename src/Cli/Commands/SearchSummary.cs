using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>What search, report and export print about a study: the front, the answer, the margin over uniform pruning,
/// and the command that continues an unfinished study.</summary>
static partial class SearchCommands
{
    /// <summary>Why a finished search exported nothing, with the failures counted and the next step; null when it exported
    /// models or has not finished.</summary>
    internal static string? NothingExported(PruningSearchResult result)
    {
        if (result.Status != StudyStatus.Finished || result.Front.Count > 0) return null;
        var failed = result.Trials.Where(t => t.State == TrialState.Failed).Select(t => t.Error ?? "no reason recorded").ToList();
        // --final 0 asks for no exported model: only a search whose every trial failed produced nothing then.
        if (result.Definition.Fidelity.FinalCount == 0 && failed.Count < result.Trials.Count) return null;
        var stageErrors = result.Trials.Where(t => t.State != TrialState.Failed && t.Error is not null).Select(t => t.Error!).ToList();
        string line = "no model reached the final stage: " + FailureReasons.Summarise(failed, result.Trials.Count, "trials");
        if (stageErrors.Count > 0) line += $"; {FailureReasons.Summarise(stageErrors, stageErrors.Count + result.Trials.Count(t => t.At(SearchStage.Final) is not null), "fine-tunings")}";
        return line + FailureReasons.NextStep(Path.Combine(result.RunDirectory, "trials.csv"));
    }

    /// <summary>The study on a server that <paramref name="options"/> name (its name defaults to the run folder's), or null.</summary>
    static (StudyStorage Storage, string Name)? Shared(PruningSearchOptions options) =>
        options.Storage is { } storage ? (storage, options.StudyName ?? Path.GetFileName(Path.GetFullPath(options.OutputDirectory))) : null;

    /// <param name="shared">The study's server and name where it is not in the run directory: what resumes it.</param>
    static int Summarise(CliContext cli, CliContext context, PruningSearchResult result, bool json, (StudyStorage Storage, string Name)? shared)
    {
        if (NothingExported(result) is { } nothing)
        {
            int code = SummariseFront(cli, context, result, json, shared);
            context.Error.WriteLine(nothing);
            return code == ExitCodes.Success ? ExitCodes.NoResult : code;
        }
        return SummariseFront(cli, context, result, json, shared);
    }

    static int SummariseFront(CliContext cli, CliContext context, PruningSearchResult result, bool json, (StudyStorage Storage, string Name)? shared)
    {
        string report = Path.Combine(result.RunDirectory, "report.html");
        var plots = Directory.Exists(Path.Combine(result.RunDirectory, "plots"))
            ? Directory.GetFiles(Path.Combine(result.RunDirectory, "plots")).Order(StringComparer.Ordinal).ToArray() : [];
        if (json)
        {
            Json.Write(cli.Output, new
            {
                runDirectory = result.RunDirectory,
                status = result.Status.Name(),
                trials = result.Trials.Count,
                failed = result.Trials.Count(t => t.State == TrialState.Failed),
                hypervolume = result.HypervolumeTrace.LastOrDefault(),
                baseline = result.Baseline.Values,
                front = result.Front.Select(c => new { trial = c.Trial, int8 = c.Int8, kept = c.Kept, feasible = c.Feasible, values = c.Values, testAccuracy = c.TestAccuracy, model = c.ModelPath }),
                best = result.Best()?.Trial,
                bestInt8 = result.Best()?.Int8,
                recommendation = Recommendation.For(result) is { Model: { } chosen } r ? new
                {
                    trial = chosen.Trial, exportCommand = r.ExportCommand,
                    uniformBaseline = r.Uniform is { } u ? new
                    {
                        trial = u.Uniform.Trial, kept = u.Uniform.Kept, keptFraction = u.KeptFraction, validationAccuracy = u.Uniform.Value(ObjectiveKind.Accuracy),
                        testAccuracy = u.Uniform.TestAccuracy?.Value, validationMargin = u.ValidationMargin, testMargin = u.TestMargin, isAnswer = u.IsAnswer,
                    } : null,
                    figures = r.Savings.Concat(r.Device).Select(c => new
                    {
                        kind = c.Kind.Name(), on = c.Where, baseline = c.Baseline, model = c.Model, factor = c.Factor, unit = c.Kind.Info().Unit,
                        provenance = c.Provenance.Description,
                    }),
                } : null,
                // The sensitivity prior's probes: what each dimension lost cut alone (null where the search did not probe).
                sensitivity = result.Sensitivity?.Zip(result.Dimensions, (lost, d) => new { dimension = d.Name, channels = d.Size, accuracyLost = lost }),
                fidelityCorrelations = result.FidelityCorrelations.Select(c => new
                {
                    from = c.From.ToString().ToLowerInvariant(), to = c.To.ToString().ToLowerInvariant(), pairs = c.Pairs, spearman = c.Spearman,
                }),
                kernels = TorchRuntime.Decision?.ToString(),
                kernelChecks = new { signatures = ConvKernels.CheckCost.Count, seconds = ConvKernels.CheckCost.Time.TotalSeconds, wrong = ConvKernels.WrongFound },
                nothingExported = NothingExported(result),
                report,
                plots,
            });
            return ExitCodes.Success;
        }
        var console = context.Console;
        var objectives = result.Definition.Objectives;
        if (result.Unfinished is { } unfinished && result.Front.Count > 0)
            console.MarkupLine($"[yellow]{Markup.Escape(unfinished)}: the front and the best model are provisional; continue with: " +
                               $"{Markup.Escape(ResumeCommand(result.RunDirectory, shared))}[/]");
        if (result.Front.Count == 0)
        {
            if (result.Status != StudyStatus.Finished) // a finished one says why on standard error (Summarise)
                console.MarkupLine($"[yellow]stopped before the final stage; continue with: {Markup.Escape(ResumeCommand(result.RunDirectory, shared))}[/]");
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title("exported models (final front)").AddColumn("trial");
            foreach (var objective in objectives) table.AddColumn(new TableColumn(objective.Name()).RightAligned());
            table.AddColumn(new TableColumn("test acc.").RightAligned()).AddColumn("model");
            var best = result.Best();
            foreach (var c in result.Front)
            {
                var cells = new List<string> { (c == best ? "[green]★ " : "") + c.Label + (c == best ? "[/]" : "") + (c.Feasible ? "" : " [red](infeasible)[/]")
                                               + (c.Trial == result.UniformBaseline?.Trial && !c.Int8 ? " [grey](uniform)[/]" : "") };
                cells.AddRange(objectives.Select(o => o.Format(c.Value(o))));
                cells.Add(c.TestAccuracy is { } t ? ObjectiveKind.Accuracy.Format(t.Value) : "");
                cells.Add(Markup.Escape(Path.GetRelativePath(Environment.CurrentDirectory, c.ModelPath)));
                table.AddRow(cells.ToArray());
            }
            var baselineCells = new List<string> { "baseline" };
            baselineCells.AddRange(objectives.Select(o => o.Format(result.Baseline.Value(o))));
            baselineCells.AddRange(["", ""]);
            table.AddRow(baselineCells.ToArray());
            console.Write(table);
            foreach (var v in result.Baseline.Values.Where(v => objectives.Contains(v.Kind)))
                console.MarkupLine($"[grey]{Markup.Escape(v.Kind.Name())}: {Markup.Escape(v.Provenance.ToString())}[/]");
            if (best is not null)
            {
                console.MarkupLine($"best under the constraints{(result.Status == StudyStatus.Finished ? "" : " so far")}: trial {best.Label} → {Markup.Escape(best.ModelPath)}");
                var card = Recommendation.For(result);
                console.MarkupLine("  " + Markup.Escape(string.Join("; ", card.Savings.Concat(card.Device).Where(c => c.Kind != ObjectiveKind.Params)
                    .Select(c => $"{c.Kind.Info().Label}{(c.Where is { } w ? $" on {w}" : "")} {c.Kind.Format(c.Model)} ({Recommendation.Describe(c)}" +
                                 $"{(c.Provenance.Kind == ProvenanceKind.Estimated ? ", estimated" : "")})"))));
                if (card.Uniform is { } uniform) console.MarkupLine("  " + Markup.Escape(uniform.Describe()));
                else if (card.UniformAbsence is { } absence) console.MarkupLine($"  [grey]{Markup.Escape(absence)}[/]");
                console.MarkupLine($"  take it out with: {Markup.Escape(card.ExportCommand)}");
            }
            else console.MarkupLine("[yellow]no exported model meets every constraint[/]");
        }
        foreach (var c in result.FidelityCorrelations.Where(c => c.Spearman is not null))
            console.MarkupLine($"[grey]rank correlation {c.From.ToString().ToLowerInvariant()} → {c.To.ToString().ToLowerInvariant()}: " +
                               $"ρ = {c.Spearman:0.00} over {c.Pairs} trials[/]");
        if (TorchRuntime.Decision is { } kernels) console.MarkupLine($"[grey]kernels: {Markup.Escape(kernels.ToString())}[/]");
        if (ConvKernels.CheckCost is { Count: > 0 } checks)
            console.MarkupLine($"[grey]kernel checks: {checks.Count} convolution signatures checked against ATen in {checks.Time.TotalSeconds:0.0} s" +
                               (ConvKernels.WrongFound is > 0 and var wrong ? $"; {wrong} oneDNN kernels found wrong here for a signature, each avoided since" : "") + "[/]");
        console.MarkupLine($"report: {Markup.Escape(report)}");
        foreach (var plot in plots.Where(p => p.EndsWith(".png", StringComparison.Ordinal))) console.MarkupLine($"plot: {Markup.Escape(plot)}");
        return ExitCodes.Success;
    }

    /// <summary>The command that continues the study in <paramref name="directory"/>, or on a server where
    /// <paramref name="shared"/> names one, as the user can paste it here.</summary>
    static string ResumeCommand(string directory, (StudyStorage Storage, string Name)? shared = null)
    {
        if (shared is { } server) return $"paretoprune search --resume --storage {server.Storage.Location} --study {server.Name}";
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, directory);
        string path = relative.StartsWith("..", StringComparison.Ordinal) ? Path.GetFullPath(directory) : relative; // below here: short; elsewhere: absolute
        return $"paretoprune search --resume --out {(path.Contains(' ') ? $"\"{path}\"" : path)}";
    }
}
