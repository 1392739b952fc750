using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>allocation RESULTS [MODELS] [BOUNDS] [SEEDS] [TRIALS] [FINAL_STEPS] [BUDGET]</c> (issue 28): where per-layer allocation
/// beats uniform pruning. For each model, bounded cost (<c>macs</c>, <c>params</c>, <c>energy</c>: Raspberry Pi 4B energy
/// estimated by the profile) and seed, at <c>cost ≤ BUDGET × baseline</c>, four arms through the same pipeline (screening,
/// promotion, final fine-tuning, export), so that every exported model gets the same final fine-tuning:
/// <list type="bullet">
/// <item><c>bo</c>, the search, and <c>random</c>, random search (seed 0 only), each with TRIALS configurations;</item>
/// <item><c>uniform</c>: the same fraction kept everywhere, the largest that meets the bound (the <c>uniform</c> sampler's
/// first point, one trial), fine-tuned with the same final budget;</item>
/// <item><c>uniform+compute</c>: the same configuration, its final fine-tuning given every training step the search spent
/// (screening, promotion and final): the user's real alternative, prune uniformly and train longer.</item>
/// </list>
/// The search's answer is its most accurate exported model under the bound by validation accuracy (what <c>export</c>
/// picks); every arm is reported on the test set, which no arm looks at. Each finished cell is appended to RESULTS (JSON
/// lines) at once and skipped when the benchmark runs again, so a long matrix runs in parts, across sessions; the summary
/// is printed from everything recorded.
/// </summary>
static class AllocationBenchmark
{
    const int StepsPerEpoch = 843; // 53,9xx training images of Fashion-MNIST in batches of 64

    public sealed record Cell(string Model, string Bound, double Budget, int Seed, string Arm, int Trials, int FinalSteps,
                              int[] Kept, double BoundKept, double Validation, double Test, double WallSeconds, long TrainingSteps,
                              string Date, string Kernels);

    public static void Run(string results, string[] models, string[] bounds, int seeds, int trials, int finalSteps, double budget)
    {
        var recorded = Read(results);
        var data = DatasetCatalog.LoadFashionMnist();
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
                    foreach (string arm in new[] { "uniform", "bo", "random", "uniform+compute" })
                    {
                        if (arm == "random" && seed > 0) continue; // the control, once
                        if (recorded.Any(c => c.Model == model && c.Bound == bound && c.Budget == budget && c.Seed == seed && c.Arm == arm
                                              && c.Trials == trials && c.FinalSteps == finalSteps)) continue;
                        Console.WriteLine($"running {Path.GetFileNameWithoutExtension(model)}, {bound} ≤ {budget:P0}, seed {seed}, {arm} ({DateTime.UtcNow:HH:mm} UTC)");
                        var cell = RunCell(model, bound, budget, seed, arm, trials, finalSteps, Split(seed));
                        recorded.Add(cell);
                        File.AppendAllText(results, JsonSerializer.Serialize(cell) + "\n");
                        Console.WriteLine($"  test {cell.Test:P2}, validation {cell.Validation:P2}, {bound} kept {cell.BoundKept:P1}, kept {string.Join(";", cell.Kept)}, " +
                                          $"{cell.TrainingSteps} training steps, {TimeSpan.FromSeconds(cell.WallSeconds):mm\\:ss}");
                    }
        Summarise(recorded.Where(c => c.Trials == trials && c.FinalSteps == finalSteps && c.Budget == budget).ToList());
    }

    static Cell RunCell(string model, string bound, double budget, int seed, string arm, int trials, int finalSteps, SearchData data)
    {
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
        int promoted = Math.Min(fidelity.PromoteCount, trials), final = Math.Min(fidelity.FinalCount, promoted);
        long searchSteps = (long)trials * fidelity.ScreeningSteps + (long)promoted * fidelity.PromotionSteps + (long)final * finalSteps;
        bool uniform = arm.StartsWith("uniform", StringComparison.Ordinal);
        if (uniform)
        {
            fidelity = fidelity with { PromoteCount = 1, FinalCount = 1 };
            if (arm == "uniform+compute")
            {
                // Every step the search spent, in the final fine-tuning (less the screening and promotion steps it still takes).
                long steps = searchSteps - fidelity.ScreeningSteps - fidelity.PromotionSteps;
                int epochs = (int)Math.Ceiling(steps / (double)StepsPerEpoch);
                fidelity = fidelity with { FinalEpochs = epochs, FinalStepsPerEpoch = (int)Math.Ceiling(steps / (double)epochs) };
            }
        }
        string directory = Path.Combine(Path.GetTempPath(), $"paretoprune-allocation-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var options = new PruningSearchOptions
        {
            OutputDirectory = directory,
            Objectives = [ObjectiveKind.Accuracy, kind],
            Constraints = ConstraintSet.Parse([$"{kind.Name()} <= {budget.ToString(System.Globalization.CultureInfo.InvariantCulture)}*baseline"]),
            Sampler = uniform ? "uniform" : arm, Trials = uniform ? 1 : trials, Seed = seed, Fidelity = fidelity,
        };
        var watch = Stopwatch.StartNew();
        try
        {
            var result = new PruningSearch(new MLContext(seed: seed), options).RunAsync(model, data).GetAwaiter().GetResult();
            var best = result.Best() ?? throw new InvalidOperationException($"{arm}: no exported model meets {kind.Name()} ≤ {budget:P0}");
            long steps = uniform ? fidelity.ScreeningSteps + fidelity.PromotionSteps + (long)fidelity.FinalEpochs * fidelity.FinalStepsPerEpoch!.Value : searchSteps;
            return new Cell(model, bound, budget, seed, arm, trials, finalSteps, [.. best.Kept],
                            best.Value(kind) / result.Baseline.Value(kind), best.Value(ObjectiveKind.Accuracy), best.TestAccuracy!.Value,
                            watch.Elapsed.TotalSeconds, steps, DateTime.UtcNow.ToString("yyyy-MM-dd"), TorchRuntime.Decision?.Mode ?? TorchRuntime.Off);
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

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
            if (Mean("bo") is { } bo && Mean("uniform") is { } u)
                Console.WriteLine($"{Path.GetFileNameWithoutExtension(g.Key.Model)}, {g.Key.Bound}: search − uniform = {100 * (bo - u):+0.00;-0.00} points" +
                                  (Mean("uniform+compute") is { } uc ? $", search − uniform with the search's compute = {100 * (bo - uc):+0.00;-0.00} points" : "") +
                                  (Mean("random") is { } r ? $", search − random = {100 * (bo - r):+0.00;-0.00} points" : "") + spread);
        }
    }
}
