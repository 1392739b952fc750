using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>allocation RESULTS [MODELS] [BOUNDS] [SEEDS] [TRIALS] [FINAL_STEPS] [BUDGET] [ARMS]</c> (issue 28): where per-layer
/// allocation beats uniform pruning. For each model, bounded cost (<c>macs</c>, <c>params</c>, <c>energy</c>: Raspberry Pi 4B
/// energy estimated by the profile) and seed, at <c>cost ≤ BUDGET × baseline</c>, these arms go through the same pipeline
/// (screening, promotion, final fine-tuning, export), so that every exported model gets the same final fine-tuning:
/// <list type="bullet">
/// <item><c>bo</c>: the search as shipped, TRIALS configurations, uniform pruning at the bound carried through every stage
/// beside its picks (<see cref="PruningSearchOptions.UniformBaseline"/>). Cells named <c>bo-v1</c> were recorded before
/// that lever existed: the same search, which dropped its uniform design point before the final stage.</item>
/// <item><c>uniform</c>: the same fraction kept everywhere, the largest that meets the bound, fine-tuned with the same final
/// budget. Taken from the <c>bo</c> run's uniform baseline, which went through the same stages with the same trial seed; run
/// alone (the <c>uniform</c> sampler, one trial) where no <c>bo</c> cell gave it.</item>
/// <item><c>bo-focus</c>: the same, half its proposals after the initial design placed on the budget surface
/// (<see cref="PruningSearchOptions.BoundFocus"/> ½); <c>bo-focus1</c>, all of them (1); <c>bo-tied</c>, <c>bo-focus1</c>
/// over one dimension per channel width (<c>--tie-groups</c>).</item>
/// <item><c>random</c> (seed 0 only): random search, TRIALS configurations.</item>
/// <item><c>uniform+compute</c>: the uniform configuration, its final fine-tuning given every training step the search spent
/// (screening, promotion and final): the user's real alternative, prune uniformly and train longer.</item>
/// <item><c>greedy</c>: NetAdapt-style greedy allocation (<see cref="GreedySampler"/>), 4 iterations of one
/// candidate per dimension, so it screens 4 × dimensions configurations: more compute than the search.</item>
/// <item><c>bo-long</c>: <c>bo-focus1</c> with a final stage three times as long (deploy fidelity), recording the uniform
/// baseline it carried, fine-tuned as long, as <c>uniform-long</c>: the margin at the accuracy users deploy.</item>
/// <item><c>bo-front</c> and <c>uniform-front</c>: the fine-tuned front, not one answer: the search as shipped and a sweep
/// of uniform fractions over the feasible range (the <c>uniform</c> sampler), each exporting the search's default number
/// of final models (every one promoted first); the cell records the hypervolume of their test accuracy against the
/// bounded cost.</item>
/// </list>
/// The search's answer is its most accurate exported model under the bound by validation accuracy (what <c>export</c>
/// picks); every arm is reported on the test set, which no arm looks at. Each finished cell is appended to RESULTS (JSON
/// lines) at once and skipped when the benchmark runs again, so a long matrix runs in parts, across sessions; the summary
/// is printed from everything recorded.
/// </summary>
static class AllocationBenchmark
{
    const int StepsPerEpoch = 843; // 53,9xx training images of Fashion-MNIST in batches of 64

    /// <param name="FrontHypervolume">The front arms only: hypervolume of the exported models' (test accuracy, bounded cost),
    /// normalised by the baseline, against the search's final reference (baseline accuracy − 10 points, the bound).</param>
    /// <param name="FrontSize">The front arms only: the exported models the hypervolume is of.</param>
    public sealed record Cell(string Model, string Bound, double Budget, int Seed, string Arm, int Trials, int FinalSteps,
                              int[] Kept, double BoundKept, double Validation, double Test, double WallSeconds, long TrainingSteps,
                              string Date, string Kernels, double? FrontHypervolume = null, int? FrontSize = null);

    /// <summary>Every arm, in the order a cell runs them.</summary>
    public static readonly string[] DefaultArms = ["bo", "uniform", "random", "uniform+compute", "greedy", "bo-focus", "bo-focus1", "bo-tied", "bo-front", "uniform-front", "bo-long", "uniform+search", "bo-trust", "bo-sens", "bo-prior", "bo-top", "bo-tuned", "bo-stream"];

    /// <summary>The arm whose recorded training steps an equal-compute uniform arm gets: <c>uniform+compute</c> matches the
    /// unfocused search (<c>bo</c>, the first default), <c>uniform+search</c> the search as shipped (bound focus 1).</summary>
    static string? ComputeOf(string arm)
    {
        var (name, criterion) = Parse(arm);
        return (name switch { "uniform+compute" => "bo", "uniform+search" => "bo-focus1", _ => null }) is { } of ? of + (criterion is null ? "" : "@" + criterion.Name) : null;
    }

    /// <summary>An arm and the channel criterion it prunes by: <c>ARM@CRITERION</c> (e.g. <c>uniform@fpgm</c>, the criterion
    /// lever), L1 (the search's default) where none is given.</summary>
    static (string Arm, ChannelCriterion? Criterion) Parse(string arm) =>
        arm.Split('@') is [var name, var criterion] ? (name, ChannelCriterion.Parse(criterion)) : (arm, null);

    /// <summary>The final stage of the <c>bo-long</c> arm, in epochs: about what <c>uniform+compute</c> gives its one model.</summary>
    const int LongFinalEpochs = 3;

    public static void Run(string results, string[] models, string[] bounds, int seeds, int trials, int finalSteps, double budget, string[] arms)
    {
        if (arms.FirstOrDefault(a => !DefaultArms.Contains(Parse(a).Arm)) is { } unknown)
            throw new ArgumentException($"arm '{unknown}': {string.Join(", ", DefaultArms)}, each optionally @CRITERION");
        var recorded = Read(results);
        var data = DatasetCatalog.LoadFashionMnist();
        // The recorded cells are on the full set (its 10,000 test images decide the verdict); the embedded sample's 9,000
        // training images would train other models, and a matrix that mixed the two would compare nothing. Checked before
        // the first cell that runs, so the summary of what is recorded still prints anywhere.
        void CheckFullSet()
        {
            if (data.Test.Count != 10_000)
                throw new InvalidOperationException($"the allocation matrix runs on the full Fashion-MNIST, and only {data.Description} was found: " +
                                                    $"install it (tools/install-debian-packages.sh: dataset-fashion-mnist, in {DatasetCatalog.DebianFashionMnistDirectory})");
        }
        // The seed draws the validation split too: a trial's training seed is its number, so with one split every seed's
        // uniform arm would train the same model on the same batches, and uniform pruning would show no seed spread.
        SearchData Split(int seed) => SearchData.From(data, 0.1, seed, validationLimit: 1000);
        var searchData = Split(0);
        Console.WriteLine($"{data.Description}; {searchData.Train.Count} training, {searchData.Validation.Count} validation (split by the seed), {data.Test.Count} test images; " +
                          $"budget {budget:P0} of the baseline; {trials} trials per search; final fine-tuning {finalSteps} steps; results in {results} " +
                          $"({recorded.Count} cells recorded)\n");
        foreach (string model in models)
            foreach (string bound in bounds)
                for (int seed = 0; seed < seeds; seed++)
                    foreach (string arm in arms.OrderBy(a => Array.IndexOf(DefaultArms, Parse(a).Arm)))
                    {
                        if (arm == "random" && seed > 0) continue; // the control, once (list the greedy arm for the seeds it should run)
                        if (Recorded(recorded, model, bound, budget, seed, arm, trials, finalSteps)) continue;
                        Console.WriteLine($"running {Path.GetFileNameWithoutExtension(model)}, {bound} ≤ {budget:P0}, seed {seed}, {arm} ({DateTime.UtcNow:HH:mm} UTC)");
                        long? searchCompute = recorded.FirstOrDefault(c => c.Model == model && c.Bound == bound && c.Budget == budget && c.Seed == seed
                                                                           && c.Arm == ComputeOf(arm) && c.Trials == trials && c.FinalSteps == finalSteps)?.TrainingSteps;
                        if (Parse(arm).Arm == "uniform+search" && searchCompute is null)
                        {
                            Console.WriteLine($"  {arm}: FAILED: run bo-focus1 for this seed first: this arm gets the training steps it recorded");
                            continue;
                        }
                        CheckFullSet();
                        Cell[] ran;
                        try
                        {
                            ran = RunCell(model, bound, budget, seed, arm, trials, finalSteps, Split(seed), searchCompute);
                        }
                        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                        {
                            // One arm that cannot meet the bound (greedy under a 50 % energy bound) is a result to report,
                            // not a reason to skip the rest of the line.
                            Console.WriteLine($"  {arm}: FAILED: {e.Message}");
                            continue;
                        }
                        foreach (var cell in ran)
                        {
                            if (Recorded(recorded, cell.Model, cell.Bound, cell.Budget, cell.Seed, cell.Arm, trials, finalSteps)) continue;
                            recorded.Add(cell);
                            File.AppendAllText(results, JsonSerializer.Serialize(cell) + "\n");
                            Console.WriteLine($"  {cell.Arm}: test {cell.Test:P2}, validation {cell.Validation:P2}, {bound} kept {cell.BoundKept:P1}, kept {string.Join(";", cell.Kept)}, " +
                                              $"{cell.TrainingSteps} training steps, {TimeSpan.FromSeconds(cell.WallSeconds):mm\\:ss}");
                        }
                    }
        Summarise(recorded.Where(c => (c.Trials == trials || c.Arm == "greedy") && c.FinalSteps == finalSteps && c.Budget == budget).ToList());
    }

    static Cell[] RunCell(string model, string bound, double budget, int seed, string armName, int trials, int finalSteps, SearchData data, long? searchCompute)
    {
        var (arm, criterion) = Parse(armName);
        string suffix = criterion is null ? "" : "@" + criterion.Name;
        var kind = bound switch
        {
            "macs" => ObjectiveKind.Macs,
            "params" => ObjectiveKind.Params,
            "energy" => ObjectiveKind.Energy,
            _ => throw new ArgumentException($"bound '{bound}': macs, params or energy"),
        };
        // The search's stages; the uniform arms are one configuration carried through the same stages.
        var fidelity = new FidelityOptions
        {
            RecalibrationBatches = 20, BatchSize = 64, ScreeningSteps = 30, PromoteCount = 4, PromotionSteps = 100, FinalCount = 2,
            FinalEpochs = 1, FinalStepsPerEpoch = finalSteps,
        };
        bool uniform = arm.StartsWith("uniform", StringComparison.Ordinal);
        // The front arms: as many exported models as the search's default final stage, from the search as shipped or from
        // a sweep of uniform fractions over the feasible range (the uniform sampler), every one promoted first.
        bool front = arm.EndsWith("-front", StringComparison.Ordinal);
        if (front) fidelity = fidelity with { PromoteCount = FrontModels, FinalCount = FrontModels };
        // Deploy fidelity: the search as shipped, its exported models and the uniform baseline beside them fine-tuned three
        // times as long, as a user fine-tunes the model they deploy. Does the allocation's margin survive longer training?
        if (arm == "bo-long") fidelity = fidelity with { FinalEpochs = LongFinalEpochs };
        if (uniform && !front)
        {
            fidelity = fidelity with { PromoteCount = 1, FinalCount = 1 };
            if (ComputeOf(arm) is not null)
            {
                // Every step the search spent (its recorded cell, or what its stages allow at most), in the final
                // fine-tuning, less the screening and promotion steps this arm still takes.
                long spent = searchCompute ?? (long)trials * fidelity.ScreeningSteps + 5L * fidelity.PromotionSteps + 3L * finalSteps;
                long steps = spent - fidelity.ScreeningSteps - fidelity.PromotionSteps;
                int epochs = (int)Math.Ceiling(steps / (double)StepsPerEpoch);
                fidelity = fidelity with { FinalEpochs = epochs, FinalStepsPerEpoch = (int)Math.Ceiling(steps / (double)epochs) };
            }
        }
        // The greedy baseline gets as many trials as its iterations need: one candidate per dimension each (its cell records them).
        int screened = arm == "greedy" ? GreedyIterations * Dimensions(model, data) : arm == "uniform-front" ? FrontModels : uniform ? 1 : trials;
        string directory = Path.Combine(Path.GetTempPath(), $"paretoprune-allocation-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var options = new PruningSearchOptions
        {
            OutputDirectory = directory,
            Objectives = [ObjectiveKind.Accuracy, kind],
            Constraints = ConstraintSet.Parse([$"{kind.Name()} <= {budget.ToString(System.Globalization.CultureInfo.InvariantCulture)}*baseline"]),
            Sampler = uniform ? SamplerKind.Uniform : arm.StartsWith("bo", StringComparison.Ordinal) ? SamplerKind.Bayesian : Samplers.Parse(arm), Trials = screened, Seed = seed, Fidelity = fidelity,
            // The search carries uniform pruning to the final stage; random search and the greedy baseline are measured as
            // the methods they are.
            UniformBaseline = arm.StartsWith("bo", StringComparison.Ordinal) && !front,
            BoundFocus = arm switch { "bo-focus" => 0.5, "bo-focus1" or "bo-tied" or "bo-front" or "bo-long" or "bo-trust" or "bo-sens" or "bo-prior" or "bo-top" or "bo-tuned" or "bo-stream" => 1, _ => 0 },
            // The trust-region lever: bo-focus1 whose focused proposals refine the incumbent on the bound.
            TrustRegion = arm == "bo-trust",
            // The sensitivity-prior lever: bo-focus1 whose second design point is shaped by one probe per group.
            // The sensitivity prior, whole (bo-tuned: the search's --sensitivity-prior), and its parts: bo-sens, the probes
            // recalibrated only, shaping the second design point; bo-prior, that point also carried to the final stage beside
            // the uniform baseline; bo-top, bo-prior whose promotion and final stage take the most accurate trials under the bound.
            SensitivityPrior = arm == "bo-tuned",
            Levers = arm switch
            {
                "bo-sens" => new(Probe: true, ProbeSteps: 0, Carry: false, SelectMostAccurate: false),
                "bo-prior" => new(Probe: true, ProbeSteps: 0, Carry: true, SelectMostAccurate: false),
                "bo-top" => new(Probe: true, ProbeSteps: 0, Carry: true, SelectMostAccurate: true),
                _ => null,
            },
            Criterion = criterion ?? ChannelCriterion.L1,
            // Fewer, structured dimensions: one per channel width (a ResNet's stages; a VGG's blocks of equal width).
            // bo-stream: tied per width, but a residual stream apart from the block-inner channels of its width.
            Space = new SearchSpaceOptions { TieEqualSizedGroups = arm is "bo-tied" or "bo-stream", TieStreamsApart = arm == "bo-stream" },
        };
        var watch = Stopwatch.StartNew();
        try
        {
            var result = new PruningSearch(new MLContext(seed: seed), options).RunAsync(model, data).GetAwaiter().GetResult();
            var best = result.Best() ?? throw new InvalidOperationException($"{arm}: no exported model meets {kind.Name()} ≤ {budget:P0}");
            long Steps(IEnumerable<Trial> trials) => trials.Sum(t =>
                (t.At(SearchStage.Screening) is null ? 0L : fidelity.ScreeningSteps) + (t.At(SearchStage.Promotion) is null ? 0L : fidelity.PromotionSteps)
                + (t.At(SearchStage.Final) is null ? 0L : (long)fidelity.FinalEpochs * fidelity.FinalStepsPerEpoch!.Value));
            string date = DateTime.UtcNow.ToString("yyyy-MM-dd"), kernels = (TorchRuntime.Decision?.Mode ?? KernelMode.Off).Name();
            Cell Of(string name, SearchCandidate c, double seconds, long steps) =>
                new(model, bound, budget, seed, name, arm == "greedy" ? screened : trials, finalSteps, [.. c.Kept], c.Value(kind) / result.Baseline.Value(kind),
                    c.Value(ObjectiveKind.Accuracy), c.TestAccuracy!.Value, seconds, steps, date, kernels);
            // Fine-tuned probes are training too: one per group and one of the whole model.
            long probes = (options.SensitivityPrior ? fidelity.ScreeningSteps : 0) * (Dimensions(model, data) + 1L);
            var cells = new List<Cell> { Of(armName, best, watch.Elapsed.TotalSeconds, Steps(result.Trials) + probes) };
            if (options.SensitivityPrior || options.Levers is not null) LogDesign(directory, result, kind);
            if (front)
            {
                // Test accuracy against the bounded cost, both normalised by the baseline (accuracy negated: minimised).
                var baseline = result.Baseline;
                double accuracy = baseline.Value(ObjectiveKind.Accuracy), cost = baseline.Value(kind);
                var exported = result.Front.Where(c => c.Feasible && !c.Int8).ToList();
                var points = exported.Select(c => new[] { -c.TestAccuracy!.Value / accuracy, c.Value(kind) / cost }).ToList();
                double[] reference = [-(accuracy - 0.1) / accuracy, budget];
                cells[0] = cells[0] with { FrontHypervolume = Objectives.Pareto.Hypervolume.Compute(points, reference), FrontSize = exported.Count };
                return [.. cells];
            }
            // The search's uniform baseline went through the same stages as the uniform arm: it is that arm's cell, at no cost.
            if (result.UniformBaseline is { } u)
            {
                var trial = result.Trials.Single(t => t.Number == u.Trial);
                double seconds = new[] { SearchStage.Screening, SearchStage.Promotion, SearchStage.Final }.Sum(s => trial.At(s)?.TotalSeconds ?? 0);
                cells.Add(Of((arm == "bo-long" ? "uniform-long" : "uniform") + suffix, u, seconds, Steps([trial])));
            }
            return [.. cells];
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The sensitivity lever's log: the probes the study stored, and each trial's kept counts and accuracy at every
    /// stage it reached (trial 1 is the sensitivity-shaped design point), so the shape they gave can be judged beside the answer.</summary>
    static void LogDesign(string directory, PruningSearchResult result, ObjectiveKind kind)
    {
        using (var store = StudyStore.Open(Path.Combine(directory, PruningSearch.StudyFile)))
            Console.WriteLine($"  probes (accuracy lost per group): {string.Join(";", JsonSerializer.Deserialize<double[]>(store.Backend.Get("sensitivity") ?? "[]")!.Select(d => d.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)))}");
        foreach (var trial in result.Trials)
        {
            string Accuracy(SearchStage stage) => trial.At(stage) is { } at ? at.Value(ObjectiveKind.Accuracy).ToString("P2", System.Globalization.CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"  trial {trial.Number}: kept {string.Join(";", trial.Kept)}, {kind.Name()} {trial.At(SearchStage.Screening)?.Value(kind) / result.Baseline.Value(kind):P1}, " +
                              $"accuracy screened {Accuracy(SearchStage.Screening)}, promoted {Accuracy(SearchStage.Promotion)}, final {Accuracy(SearchStage.Final)}");
        }
    }

    /// <summary>Exported models of the front arms: the search's default final count.</summary>
    static readonly int FrontModels = new FidelityOptions().FinalCount;

    /// <summary>NetAdapt-style iterations of the greedy arm (each screens one candidate per dimension).</summary>
    const int GreedyIterations = 4;

    static int Dimensions(string model, SearchData data) =>
        new SearchSpace(ChannelGroups.Analyze(OnnxModel.Load(model)), ChannelCriterion.L1.Create(data.Train), new SearchSpaceOptions()).Count;

    /// <summary>Cells are keyed by the search's trial budget (the greedy arm records its own, larger one under it too).</summary>
    static bool Recorded(List<Cell> recorded, string model, string bound, double budget, int seed, string arm, int trials, int finalSteps) =>
        recorded.Any(c => c.Model == model && c.Bound == bound && c.Budget == budget && c.Seed == seed && c.Arm == arm
                          && (c.Trials == trials || arm == "greedy") && c.FinalSteps == finalSteps);

    static List<Cell> Read(string path) =>
        File.Exists(path) ? File.ReadLines(path).Where(l => l.Trim().Length > 0).Select(l => JsonSerializer.Deserialize<Cell>(l)!).ToList() : [];

    static void Summarise(List<Cell> cells)
    {
        Console.WriteLine("\n| model | bound | arm | seeds | mean test | min–max | mean bound kept | mean training steps | mean wall time |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |");
        foreach (var g in cells.GroupBy(c => (c.Model, c.Bound, c.Arm)).OrderBy(g => g.Key.Model).ThenBy(g => g.Key.Bound))
            Console.WriteLine($"| {Path.GetFileNameWithoutExtension(g.Key.Model)} | {g.Key.Bound} | {g.Key.Arm} | {g.Count()} | {g.Average(c => c.Test):P2} | " +
                              $"{g.Min(c => c.Test):P2}–{g.Max(c => c.Test):P2} | {g.Average(c => c.BoundKept):P1} | {g.Average(c => c.TrainingSteps):0} | " +
                              $"{TimeSpan.FromSeconds(g.Average(c => c.WallSeconds)):mm\\:ss} |");
        Console.WriteLine();
        foreach (var g in cells.GroupBy(c => (c.Model, c.Bound)))
        {
            double? Mean(string arm) => g.Where(c => c.Arm == arm).Select(c => c.Test).DefaultIfEmpty(double.NaN).Average() is var m && !double.IsNaN(m) ? m : null;
            var uniformTests = g.Where(c => c.Arm == "uniform").Select(c => c.Test).ToList();
            string spread = uniformTests.Count > 1 ? $"; uniform's own seed spread {100 * (uniformTests.Max() - uniformTests.Min()):0.00} points" : "";
            if (Mean("bo-focus") is { } f && Mean("uniform") is { } u0)
                Console.WriteLine($"{Path.GetFileNameWithoutExtension(g.Key.Model)}, {g.Key.Bound}: search with bound focus − uniform = {100 * (f - u0):+0.00;-0.00} points");
            if (Mean("bo") is { } bo && Mean("uniform") is { } u)
                Console.WriteLine($"{Path.GetFileNameWithoutExtension(g.Key.Model)}, {g.Key.Bound}: search − uniform = {100 * (bo - u):+0.00;-0.00} points" +
                                  (Mean("uniform+compute") is { } uc ? $", search − uniform with the search's compute = {100 * (bo - uc):+0.00;-0.00} points" : "") +
                                  (Mean("random") is { } r ? $", search − random = {100 * (bo - r):+0.00;-0.00} points" : "") +
                                  (Mean("greedy") is { } gr ? $", search − greedy = {100 * (bo - gr):+0.00;-0.00} points" : "") + spread);
        }
    }
}
