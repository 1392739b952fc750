using Microsoft.ML;
using Microsoft.ML.Data;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Objectives.Statistics;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Search;

/// <summary>A member of the final front: an exported, fine-tuned, BN-folded model and its figures.</summary>
/// <param name="Values">Every objective at the final fidelity, each with its provenance.</param>
/// <param name="TestAccuracy">Accuracy on the test split (never seen by the search); null without a test split.</param>
/// <param name="ModelPath">The ONNX file: N×C×H×W pixels in [0, 1] in, one logit per class out.</param>
/// <param name="Feasible">Whether it meets every constraint (an infeasible front is reported, marked, rather than hidden).</param>
public sealed record SearchCandidate(int Trial, IReadOnlyList<int> Kept, IReadOnlyList<ObjectiveValue> Values, ObjectiveValue? TestAccuracy,
                                     string ModelPath, bool Feasible)
{
    /// <summary>Whether this is the INT8 variant of the trial's model (<c>search --quantize</c>), not the float one.</summary>
    public bool Int8 { get; init; }

    /// <summary>"7", or "7 int8" for the INT8 variant.</summary>
    public string Label => Int8 ? $"{Trial} int8" : Trial.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public double Value(ObjectiveKind kind) => Values.FirstOrDefault(v => v.Kind == kind)?.Value
        ?? throw new KeyNotFoundException($"trial {Trial} has no {kind.Name()} value");
}

/// <summary>How well the accuracy at one stage orders trials the way a later, longer-trained stage does.</summary>
/// <param name="Pairs">Trials with a value at both stages (few pairs make ρ noisy: with 6, |ρ| below 0.89 is not significant at 5 %).</param>
/// <param name="Spearman">Spearman's rank correlation; null with fewer than 3 pairs or a constant stage.</param>
public sealed record FidelityCorrelation(SearchStage From, SearchStage To, int Pairs, double? Spearman);

/// <summary>
/// What a search found, read from its run directory: the baseline, every trial, the final front. Load any run with
/// <see cref="Load"/> (the <c>report</c> and <c>export</c> commands do).
/// </summary>
public sealed class PruningSearchResult
{
    readonly MLContext mlContext;

    PruningSearchResult(string directory, StudyDefinition definition, StageResult baseline, IReadOnlyList<Trial> trials, StudyStatus status,
                        IReadOnlyList<SearchDimension> dimensions, MLContext mlContext, string? uniformBaseline, IReadOnlyList<double>? sensitivity)
    {
        Dimensions = dimensions;
        Sensitivity = sensitivity;
        RunDirectory = directory;
        Definition = definition;
        Baseline = baseline;
        Trials = trials;
        Status = status;
        this.mlContext = mlContext;
        Constraints = ConstraintSet.Parse(definition.Constraints);
        var baselineValues = baseline.ToDictionary();
        Space = new ObjectiveSpace(definition.Objectives, baselineValues);
        Front = ComputeFront();
        UniformBaseline = uniformBaseline is null ? null
            : Trials.Where(t => SearchSpace.Key(t.Kept) == uniformBaseline && t.At(SearchStage.Final) is { ModelPath: not null })
                    .Select(t => Candidate(t, t.At(SearchStage.Final)!, int8: false)).FirstOrDefault();
        ScreeningReference = SearchProblem.ScreeningReferenceFor(definition.Objectives, Constraints, baselineValues, definition.Classes);
        HypervolumeTrace = ComputeTrace();
        FidelityCorrelations = ComputeCorrelations();
    }

    public string RunDirectory { get; }

    /// <summary>What each entry of a configuration's kept counts refers to.</summary>
    public IReadOnlyList<SearchDimension> Dimensions { get; }
    public StudyDefinition Definition { get; }
    public StageResult Baseline { get; }
    public IReadOnlyList<Trial> Trials { get; }
    public ConstraintSet Constraints { get; }

    /// <summary>Finished; stopped (by the user) or killed (its process ended without stopping it): resume to continue;
    /// or running (a search is writing it now).</summary>
    public StudyStatus Status { get; }

    /// <summary>What to tell a reader of an unfinished study's results (null when finished): its front and best model are provisional.</summary>
    public string? Unfinished => Status == StudyStatus.Finished ? null : $"this study has not finished (status: {Status.Name()})";

    /// <summary>Objectives in the canonical minimised space, normalised by the baseline (what hypervolumes are computed in).</summary>
    public ObjectiveSpace Space { get; }

    /// <summary>The non-dominated final-stage models; feasible ones first, infeasible ones only when no model meets the constraints.</summary>
    public IReadOnlyList<SearchCandidate> Front { get; }

    /// <summary>The study-store key under which a search records its uniform baseline's configuration.</summary>
    internal const string UniformBaselineKey = "uniform-baseline";

    /// <summary>The study-store key under which the sensitivity prior records its probes (a JSON array, one per dimension).</summary>
    internal const string SensitivityKey = "sensitivity";

    /// <summary>
    /// With <see cref="PruningSearchOptions.SensitivityPrior"/>: per search dimension, the validation accuracy lost when it
    /// alone was cut to its count under uniform pruning at the bound and fine-tuned for a screening (a fraction); null
    /// where the search did not probe.
    /// </summary>
    public IReadOnlyList<double>? Sensitivity { get; }

    /// <summary>
    /// Uniform pruning at the cost bound (the same fraction kept in every group), taken through the same stages and
    /// fine-tuning as the search's own picks (<see cref="PruningSearchOptions.UniformBaseline"/>): what a user gets without
    /// the search, to weigh its answer against. Null when the study did not carry it (no cost bound, turned off, or from
    /// before it existed) or its final stage has not run; it may or may not be on <see cref="Front"/>.
    /// </summary>
    public SearchCandidate? UniformBaseline { get; }

    /// <summary>Why <see cref="UniformBaseline"/> is null in a study that asked for it (null otherwise): what a reader of the
    /// report should know about the margin it cannot show.</summary>
    public string? UniformBaselineAbsence =>
        UniformBaseline is not null || !Definition.UniformBaseline ? null
        : !Constraints.Any(c => c.IsUpperBound && c.Objective != ObjectiveKind.Accuracy)
            ? "no cost bound, so no uniform pruning to weigh the answer against: give one (e.g. --constraint \"params<=0.25*baseline\") " +
              "to see what per-layer allocation gains on this model"
            : Status == StudyStatus.Finished ? "uniform pruning at the bound did not reach the final stage (its trial failed)" : null;

    internal double[] ScreeningReference { get; }

    /// <summary>Hypervolume of the feasible screening front after each trial, in trial order (the sampler's progress).</summary>
    public IReadOnlyList<double> HypervolumeTrace { get; }

    /// <summary>Screening against promotion, screening against final and promotion against final: whether the cheap stages
    /// rank candidates as fine-tuning does (ρ near 0 means the screening proxy carried no signal for this study).</summary>
    public IReadOnlyList<FidelityCorrelation> FidelityCorrelations { get; }

    /// <summary>Opens the run directory of a search (finished or not).</summary>
    public static PruningSearchResult Load(string runDirectory, MLContext? mlContext = null)
    {
        using var store = StudyStore.Open(Path.Combine(runDirectory, PruningSearch.StudyFile));
        return Load(store, Path.GetFullPath(runDirectory), mlContext ?? new MLContext(seed: 0));
    }

    /// <summary>The search in an open study (one read of it, e.g. beside other reads of the same store).</summary>
    /// <exception cref="InvalidDataException">The search has not stored its baseline and search space yet.</exception>
    public static PruningSearchResult Load(StudyStore store, MLContext? mlContext = null) =>
        Load(store, Path.GetDirectoryName(store.FilePath ?? throw new ArgumentException($"{store.Location} is on a server: give the directory to write its models to"))!,
             mlContext ?? new MLContext(seed: 0));

    /// <summary>The search in an open study, its models in <paramref name="directory"/>. The models of a study on a server are
    /// written there from the store where missing (they were exported on whichever machine ran their final stage).</summary>
    public static PruningSearchResult Load(StudyStore store, string directory, MLContext? mlContext = null)
    {
        directory = Path.GetFullPath(directory);
        mlContext ??= new MLContext(seed: 0);
        var trials = store.Trials();
        if (store.Backend.IsShared)
            foreach (string model in trials.SelectMany(t => t.At(SearchStage.Final)?.ModelPaths ?? []))
            {
                string path = Path.GetFullPath(Path.Combine(directory, model));
                // A path the store gives is relative to the run directory: one that leads out of it is not written.
                if (!path.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal)) continue;
                if (File.Exists(path) || store.Backend.GetArtifact(model.Replace('\\', '/')) is not { } bytes) continue;
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                AtomicFile.WriteAllBytes(path, bytes);
            }
        return new(directory, store.Definition, store.Baseline ?? throw new InvalidDataException($"{store.Location}: the study has no baseline yet"),
            trials, store.LiveStatus, store.Dimensions ?? throw new InvalidDataException($"{store.Location}: the study has no search space yet"), mlContext,
            store.Backend.Get(UniformBaselineKey),
            store.Backend.Get(SensitivityKey) is { } probes ? System.Text.Json.JsonSerializer.Deserialize<double[]>(probes) : null);
    }

    /// <summary>The most accurate front member that meets <paramref name="constraints"/> (the study's own by default); fewer MACs
    /// break ties. Null when none does.</summary>
    public SearchCandidate? Best(ConstraintSet? constraints = null)
    {
        constraints ??= Constraints;
        var baseline = Baseline.ToDictionary();
        return Front.Where(c => constraints.TotalViolation(ObjectiveValue.ToDictionary(c.Values), baseline) == 0)
            .OrderByDescending(c => c.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Value ?? 0)
            .ThenBy(c => c.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Macs)?.Value ?? 0)
            .FirstOrDefault();
    }

    /// <summary>
    /// The candidate's model as an ML.NET transformer (<c>ApplyOnnxModel</c>, fitted), ready to append to a pipeline. Its input
    /// column is the model's input name holding C·H·W floats (pixels in [0, 1], NCHW); its output column, the model's output
    /// name, holds one logit per class (class names are in the model's metadata, <see cref="ModelInterface"/>).
    /// </summary>
    public ITransformer CreateTransformer(SearchCandidate candidate) => CreateTransformer(mlContext, candidate.ModelPath);

    /// <inheritdoc cref="CreateTransformer(SearchCandidate)"/>
    public static ITransformer CreateTransformer(MLContext mlContext, string modelPath)
    {
        var graph = new OnnxGraph(OnnxModel.Load(modelPath));
        string input = graph.Inputs[0].Name, output = graph.Outputs[0].Name;
        var shape = ModelCost.Analyze(graph).InputShape;
        int[] oneImage = [1, .. shape.Skip(1).Select(d => (int)d)];
        int size = oneImage.Skip(1).Aggregate(1, (a, d) => a * d);
        var definition = SchemaDefinition.Create(typeof(PixelsRow));
        var column = definition[nameof(PixelsRow.Pixels)]; // the indexer looks columns up by name: rename last
        column.ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        column.ColumnName = input;
        var empty = mlContext.Data.LoadFromEnumerable(Array.Empty<PixelsRow>(), definition);
        return mlContext.Transforms.ApplyOnnxModel([output], [input], modelPath, new Dictionary<string, int[]> { [input] = oneImage },
                                                   gpuDeviceId: null, fallbackToCpu: true).Fit(empty);
    }

    sealed class PixelsRow
    {
        public float[] Pixels { get; set; } = [];
    }

    /// <summary>Values of a trial at a stage as a canonical point, or null when it has none.</summary>
    internal double[]? Point(Trial trial, SearchStage stage) => trial.At(stage) is { } r ? Space.ToPoint(r.ToDictionary()) : null;

    /// <summary>Constraints that apply at a stage (accuracy bounds only once candidates are fine-tuned).</summary>
    internal ConstraintSet ConstraintsAt(SearchStage stage) =>
        stage == SearchStage.Screening ? new ConstraintSet(Constraints.Where(c => !SearchProblem.IsFidelityDependent(c.Objective))) : Constraints;

    internal double Violation(StageResult result) => ConstraintsAt(result.Stage).TotalViolation(result.ToDictionary(), Baseline.ToDictionary());

    /// <summary>The non-dominated exported models: each final model, and its INT8 variant where the study quantizes, as
    /// deployable models of their own.</summary>
    IReadOnlyList<SearchCandidate> ComputeFront()
    {
        var exported = Trials.Where(t => t.At(SearchStage.Final) is { ModelPath: not null })
            .SelectMany(t => new[] { (Trial: t, Result: t.At(SearchStage.Final)!, Int8: false), (Trial: t, Result: t.At(SearchStage.Final)!.Int8!, Int8: true) })
            .Where(e => e.Result is { ModelPath: not null })
            .ToList();
        if (exported.Count == 0) return [];
        var points = exported.Select(e => Space.ToPoint(e.Result.ToDictionary())).ToList();
        var violations = exported.Select(e => Violation(e.Result)).ToList();
        return NonDominatedSorting.FirstFront(points, violations)
            .Select(i => exported[i])
            .Select(e => Candidate(e.Trial, e.Result, e.Int8))
            .OrderByDescending(c => c.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Value ?? 0)
            .ThenBy(c => c.Int8)
            .ToList();
    }

    SearchCandidate Candidate(Trial trial, StageResult result, bool int8) =>
        new(trial.Number, trial.Kept, result.Values, result.TestAccuracy, Path.Combine(RunDirectory, result.ModelPath!), Violation(result) == 0) { Int8 = int8 };

    IReadOnlyList<FidelityCorrelation> ComputeCorrelations()
    {
        FidelityCorrelation Between(SearchStage from, SearchStage to)
        {
            static double? Accuracy(StageResult? r) => r?.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Value;
            var pairs = Trials.Select(t => (From: Accuracy(t.At(from)), To: Accuracy(t.At(to))))
                .Where(p => p.From is not null && p.To is not null).Select(p => (From: p.From!.Value, To: p.To!.Value)).ToList();
            return new FidelityCorrelation(from, to, pairs.Count, RankCorrelation.Spearman(pairs.Select(p => p.From).ToList(), pairs.Select(p => p.To).ToList()));
        }
        return [Between(SearchStage.Screening, SearchStage.Promotion), Between(SearchStage.Screening, SearchStage.Final),
                Between(SearchStage.Promotion, SearchStage.Final)];
    }

    IReadOnlyList<double> ComputeTrace()
    {
        var trace = new List<double>();
        var feasible = new List<double[]>();
        foreach (var trial in Trials.OrderBy(t => t.Number))
        {
            if (trial.At(SearchStage.Screening) is { } r && Violation(r) == 0) feasible.Add(Space.ToPoint(r.ToDictionary()));
            trace.Add(feasible.Count == 0 ? 0 : Hypervolume.Compute(feasible, ScreeningReference));
        }
        return trace;
    }
}
