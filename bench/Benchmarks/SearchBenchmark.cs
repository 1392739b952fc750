using System.Diagnostics;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>search MODEL [TRIALS] [SEEDS]</c>: Bayesian optimisation against random search and uniform pruning, same budget,
/// several seeds, on a trained model and full Fashion-MNIST, at the screening fidelity (BN recalibration, the stage the
/// sampler drives). Reports hypervolume after N trials and the MAC reduction reached within 1 and 5 points of the
/// baseline's accuracy, plus where a trial's time goes. <c>search-overhead</c>: BO's proposal time with 200 finished
/// trials on a ResNet-56 space (27 dimensions), on a synthetic accuracy so that only the sampler is timed.
/// </summary>
static class SearchBenchmark
{
    public static void Run(string modelPath, int trials, int seeds, IReadOnlyList<string> samplers)
    {
        var data = DatasetCatalog.LoadFashionMnist();
        var searchData = SearchData.From(data, 0.1, seed: 0, validationLimit: 1000);
        Console.WriteLine($"{modelPath}; {data.Description}; {searchData.Train.Count} training, {searchData.Validation.Count} validation images; " +
                          $"{trials} trials × {seeds} seeds per sampler; objectives accuracy, MACs; screening only\n");
        string root = Path.Combine(Path.GetTempPath(), $"paretoprune-search-bench-{Environment.ProcessId}");
        var traces = new Dictionary<string, List<IReadOnlyList<double>>>();
        Console.WriteLine($"| sampler | seed | HV after {trials / 2} | HV after {trials} | MACs kept at ≤ 1 pt lost | at ≤ 5 pts lost | best accuracy ≤ 50 % MACs | s / trial | propose | prune | recalibrate | score |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        var summary = new List<(string Sampler, double HvHalf, double Hv, double Macs1, double Macs5)>();
        foreach (string sampler in samplers)
            // Uniform pruning ignores the seed (its sequence is fixed), so one run stands for all.
            for (int seed = 0; seed < (sampler == "uniform" ? 1 : seeds); seed++)
            {
                var options = new PruningSearchOptions
                {
                    OutputDirectory = Path.Combine(root, $"{sampler}-{seed}"),
                    Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
                    Sampler = Samplers.Parse(sampler),
                    Trials = trials,
                    Seed = seed,
                    Fidelity = new FidelityOptions { RecalibrationBatches = 10, BatchSize = 64, PromoteCount = 0, FinalCount = 0 },
                };
                var result = new PruningSearch(new MLContext(seed: seed), options).RunAsync(modelPath, searchData).GetAwaiter().GetResult();
                var screened = result.Trials.Where(t => t.At(SearchStage.Screening) is not null).Select(t => t.At(SearchStage.Screening)!).ToList();
                double baseAccuracy = result.Baseline.Value(ObjectiveKind.Accuracy), baseMacs = result.Baseline.Value(ObjectiveKind.Macs);
                double MacsWithin(double points) => screened.Where(r => r.Value(ObjectiveKind.Accuracy) >= baseAccuracy - points)
                    .Select(r => r.Value(ObjectiveKind.Macs) / baseMacs).DefaultIfEmpty(1).Min();
                double bestHalf = screened.Where(r => r.Value(ObjectiveKind.Macs) <= 0.5 * baseMacs).Select(r => r.Value(ObjectiveKind.Accuracy)).DefaultIfEmpty(0).Max();
                double Mean(string step) => screened.Average(r => r.Seconds.GetValueOrDefault(step));
                double perTrial = screened.Average(r => r.TotalSeconds);
                double hv = result.HypervolumeTrace[^1], hvHalf = result.HypervolumeTrace[trials / 2 - 1];
                Console.WriteLine($"| {sampler} | {seed} | {hvHalf:0.0000} | {hv:0.0000} | {MacsWithin(0.01):P1} | {MacsWithin(0.05):P1} | {bestHalf:P2} | {perTrial:0.00} | " +
                                  $"{Mean("propose"):0.000} | {Mean("prune"):0.000} | {Mean("recalibrate"):0.00} | {Mean("score"):0.00} |");
                summary.Add((sampler, hvHalf, hv, MacsWithin(0.01), MacsWithin(0.05)));
                if (!traces.TryGetValue(sampler, out var list)) traces[sampler] = list = [];
                list.Add(result.HypervolumeTrace);
            }
        Console.WriteLine($"\n| sampler | mean HV after {trials / 2} | mean HV after {trials} | worst seed after {trials} | mean MACs kept at ≤ 1 pt | mean MACs kept at ≤ 5 pts |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var g in summary.GroupBy(s => s.Sampler))
            Console.WriteLine($"| {g.Key} | {g.Average(s => s.HvHalf):0.0000} | {g.Average(s => s.Hv):0.0000} | {g.Min(s => s.Hv):0.0000} | {g.Average(s => s.Macs1):P1} | {g.Average(s => s.Macs5):P1} |");

        // Mean hypervolume trace per sampler, for bench/search-hypervolume.png.
        var plot = SearchReport.HypervolumePlot(Path.Combine("bench", "search-hypervolume"), traces.Select(kv =>
            (kv.Key, (IReadOnlyList<double>)Enumerable.Range(0, trials).Select(i => kv.Value.Average(t => t[i])).ToArray())).ToList());
        Console.WriteLine($"\nplot: {plot.Png}");
        Directory.Delete(root, recursive: true);
    }

    public static void Overhead()
    {
        var space = new SearchSpace(ChannelGroups.Analyze(Architectures.CifarResNet(56, 3, 32, 10, Architectures.Shortcut.B, seed: 1)),
                                    new WeightImportance(WeightImportance.Criterion.L1));
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.93, [ObjectiveKind.Macs] = space.BaseMacs };
        var problem = new SearchProblem(space, [ObjectiveKind.Accuracy, ObjectiveKind.Macs], ConstraintSet.Parse(["macs <= 0.6*baseline"]), baseline,
            new HashSet<ObjectiveKind> { ObjectiveKind.Macs }, k => new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = space.Costs(k).Macs }, 10);
        var random = new Random(1);
        var history = new List<Observation>();
        while (history.Count < 200)
        {
            double level = random.NextDouble();
            var kept = space.Decode(Enumerable.Range(0, space.Count).Select(_ => Math.Clamp(level + 0.3 * (random.NextDouble() - 0.5), 0, 1)).ToArray());
            if (problem.PredictedViolation(kept) > 0) continue;
            double accuracy = 0.1 + 0.83 * Math.Exp(kept.Select((k, i) => (i % 3 == 0 ? 0.4 : 0.03) * Math.Log(k / (double)space.Dimensions[i].Size)).Sum());
            history.Add(new Observation(kept, new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = accuracy, [ObjectiveKind.Macs] = space.Costs(kept).Macs }));
        }
        Console.WriteLine($"ResNet-56 (shortcut B), {space.Count} dimensions, {history.Count} finished trials, objectives accuracy + MACs, macs ≤ 0.6 × baseline\n");
        Console.WriteLine("| step | time |");
        Console.WriteLine("| --- | --- |");
        // What the sampler fits: the unit-cube coordinates plus the MACs and parameter fractions, under the length-scale prior.
        var inputs = history.Select(h => BayesianSampler.Surrogate.Features(problem, h.Kept)).ToList();
        var targets = history.Select(h => -h.Values![ObjectiveKind.Accuracy] / 0.93).ToList();
        var prior = LengthScalePrior.DimensionScaled(inputs[0].Length);
        Console.WriteLine($"| GP fit (Matérn 5/2 ARD, {inputs[0].Length} inputs, prior-median start + 2 random restarts) | " +
                          $"{Timing.Format(Timing.Measure(() => GaussianProcess.Fit(inputs, targets, 0, prior: prior), warmup: 1, runs: 5))} |");
        var cost = Timing.Measure(() => space.Costs(space.Uniform(0.5)), warmup: 100, runs: 1001);
        Console.WriteLine($"| exact MACs + params of one configuration | {cost.Median * 1000:0.0} µs |");
        var sampler = new BayesianSampler();
        var proposal = Timing.Measure(() => sampler.Propose(new SamplerContext(problem, history, [], 0, 240), 1), warmup: 1, runs: 5);
        Console.WriteLine($"| BO proposal (fit + {sampler.RandomCandidates} random + front mutations, EHVI on {sampler.MonteCarloCandidates} × {sampler.Samples} samples) | {Timing.Format(proposal)} |");
    }
}
