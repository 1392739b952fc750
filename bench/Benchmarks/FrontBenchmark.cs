using System.Diagnostics;
using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Statistics;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>front MODEL [SEEDS] [TRIALS] [FINAL_STEPS]</c>: the question users deploy on, at the final fidelity. For each MAC
/// budget (50 % and 25 % of the baseline) and seed: the search (BO) under <c>macs ≤ B × baseline</c>, random search under
/// the same settings as a control, and uniform L1 pruning at the budget (the same fraction everywhere, the largest that
/// fits) fine-tuned with the same final budget. The search's answer is its best exported model by validation accuracy
/// (what <c>export</c> picks); every arm is reported on the test set, which no arm looks at. Also records each search's
/// rank correlation between screening and the fine-tuned stages, and wall times.
/// </summary>
static class FrontBenchmark
{
    public static void Run(string modelPath, int seeds, int trials, int finalSteps)
    {
        var data = DatasetCatalog.LoadFashionMnist();
        var searchData = SearchData.From(data, 0.1, seed: 0, validationLimit: 1000);
        var fidelity = new FidelityOptions
        {
            RecalibrationBatches = 20, BatchSize = 64, PromoteCount = 4, PromotionSteps = 100, FinalCount = 2, FinalEpochs = 1, FinalStepsPerEpoch = finalSteps,
        };
        Console.WriteLine($"{modelPath}; {data.Description}; {searchData.Train.Count} training, {searchData.Validation.Count} validation, {data.Test.Count} test images; " +
                          $"{trials} trials; screening: {fidelity.FidelityOf(SearchStage.Screening)}; promotion: {fidelity.PromoteCount} × {fidelity.FidelityOf(SearchStage.Promotion)}; " +
                          $"final: {fidelity.FinalCount} × {fidelity.FidelityOf(SearchStage.Final)}; uniform: the same final fine-tuning once; oneDNN {TorchRuntime.OneDnnMode.Name()}\n");
        var baseModel = OnnxModel.Load(modelPath);
        var space = new SearchSpace(ChannelGroups.Analyze(baseModel), new WeightImportance(WeightImportance.Criterion.L1));
        string root = Path.Combine(Path.GetTempPath(), $"paretoprune-front-bench-{Environment.ProcessId}");
        var rows = new List<Row>();
        Console.WriteLine("| budget | seed | arm | MACs kept | validation | test | ρ screening→promotion | ρ screening→final | wall time |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (double budget in new[] { 0.5, 0.25 })
            for (int seed = 0; seed < seeds; seed++)
            {
                foreach (string sampler in new[] { "bo", "random" })
                {
                    var watch = Stopwatch.StartNew();
                    var options = new PruningSearchOptions
                    {
                        OutputDirectory = Path.Combine(root, $"{sampler}-{budget}-{seed}"),
                        Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
                        Constraints = ConstraintSet.Parse([$"macs <= {budget}*baseline"]),
                        Sampler = Samplers.Parse(sampler), Trials = trials, Seed = seed, Fidelity = fidelity,
                    };
                    var result = new PruningSearch(new MLContext(seed: seed), options).RunAsync(modelPath, searchData).GetAwaiter().GetResult();
                    var best = result.Best() ?? throw new InvalidOperationException($"{sampler} at {budget}: no exported model meets the budget");
                    var correlation = result.FidelityCorrelations.ToDictionary(c => (c.From, c.To), c => c.Spearman);
                    rows.Add(Print(new Row(budget, seed, sampler, best.Value(ObjectiveKind.Macs) / result.Baseline.Value(ObjectiveKind.Macs),
                        best.Value(ObjectiveKind.Accuracy), best.TestAccuracy!.Value, correlation[(SearchStage.Screening, SearchStage.Promotion)],
                        correlation[(SearchStage.Screening, SearchStage.Final)], watch.Elapsed)));
                }
                {
                    var watch = Stopwatch.StartNew();
                    var kept = FidelityBenchmark.UniformAt(space, budget);
                    var pruned = space.Prune(kept);
                    using var module = new OnnxModule(pruned);
                    Trainer.RecalibrateBatchNorm(module, searchData.Train, fidelity.RecalibrationBatches, fidelity.BatchSize, seed: 0);
                    // The final stage's training, as the search's evaluator sets it up (its seed is the trial number there).
                    Trainer.Train(module, searchData.Train, null, new TrainingOptions
                    {
                        Epochs = 1, MaxStepsPerEpoch = finalSteps, BatchSize = fidelity.BatchSize, LearningRate = fidelity.LearningRate,
                        Schedule = ScheduleKind.Cosine, Seed = seed,
                    });
                    rows.Add(Print(new Row(budget, seed, "uniform L1", space.Costs(kept).Macs / (double)space.BaseMacs, Trainer.Evaluate(module, searchData.Validation).Accuracy,
                        Trainer.Evaluate(module, data.Test).Accuracy, null, null, watch.Elapsed)));
                }
            }
        Console.WriteLine($"\n| budget | arm | mean test | min–max | mean MACs kept | mean ρ screening→promotion | mean wall time |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var g in rows.GroupBy(r => (r.Budget, r.Arm)))
            Console.WriteLine($"| ≤ {g.Key.Budget:P0} | {g.Key.Arm} | {g.Average(r => r.Test):P2} | {g.Min(r => r.Test):P2}–{g.Max(r => r.Test):P2} | " +
                              $"{g.Average(r => r.MacsKept):P1} | {(g.Any(r => r.RhoPromotion is not null) ? g.Where(r => r.RhoPromotion is not null).Average(r => r.RhoPromotion!.Value).ToString("0.00") : "—")} | " +
                              $"{TimeSpan.FromSeconds(g.Average(r => r.Wall.TotalSeconds)):mm\\:ss} |");
        foreach (double budget in rows.Select(r => r.Budget).Distinct())
        {
            double Mean(string arm) => rows.Where(r => r.Budget == budget && r.Arm == arm).Average(r => r.Test);
            Console.WriteLine($"\nat ≤ {budget:P0}: BO − uniform = {100 * (Mean("bo") - Mean("uniform L1")):+0.00;-0.00} points, BO − random = {100 * (Mean("bo") - Mean("random")):+0.00;-0.00} points (mean over {seeds} seeds)");
        }
        Directory.Delete(root, recursive: true);
    }

    sealed record Row(double Budget, int Seed, string Arm, double MacsKept, double Validation, double Test, double? RhoPromotion, double? RhoFinal, TimeSpan Wall);

    static Row Print(Row r)
    {
        static string Rho(double? v) => v is { } x ? x.ToString("0.00") : "—";
        Console.WriteLine($"| ≤ {r.Budget:P0} | {r.Seed} | {r.Arm} | {r.MacsKept:P1} | {r.Validation:P2} | {r.Test:P2} | {Rho(r.RhoPromotion)} | {Rho(r.RhoFinal)} | {r.Wall:mm\\:ss} |");
        return r;
    }
}
