using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Statistics;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>fidelity MODEL [CONFIGS] [FINAL_STEPS]</c>: which cheap screening fidelity ranks candidates the way fine-tuning
/// does, per MAC budget. For each budget (50 % and 25 % of the baseline's MACs) it draws CONFIGS per-layer configurations
/// with MACs between 80 % and 100 % of the budget (a random allocation around a level found by bisection) plus uniform
/// pruning at the budget; scores each after BN recalibration only and after 10, 30 and 100 fine-tuning steps (each from
/// the recalibrated model), then after FINAL_STEPS steps (the reference); reports Spearman's ρ of each proxy against the
/// reference and the reference accuracy of the proxy's top pick.
/// </summary>
static class FidelityBenchmark
{
    static readonly int[] ProxySteps = [0, 10, 30, 100];

    public static void Run(string modelPath, int configs, int finalSteps)
    {
        var baseModel = OnnxModel.Load(modelPath);
        var data = DatasetCatalog.LoadFashionMnist();
        var searchData = SearchData.From(data, 0.1, seed: 0, validationLimit: 2000);
        var space = new SearchSpace(ChannelGroups.Analyze(baseModel), new WeightImportance(WeightImportance.Criterion.L1));
        Console.WriteLine($"{modelPath}; {data.Description}; {searchData.Train.Count} training, {searchData.Validation.Count} validation images; " +
                          $"{configs} random configurations + uniform per budget; batch 64, lr 0.01 cosine, BN recalibrated on 20 batches first; " +
                          $"reference: {finalSteps} steps; oneDNN {TorchRuntime.OneDnnMode.Name()}\n");
        foreach (double budget in new[] { 0.5, 0.25 })
        {
            var random = new Random(7);
            var candidates = new List<(string Name, int[] Kept)> { ("uniform", UniformAt(space, budget)) };
            for (int i = 0; i < configs; i++) candidates.Add(($"random {i}", RandomNear(space, budget, random)));
            Console.WriteLine($"### MACs ≤ {budget:P0} of the baseline\n");
            Console.WriteLine($"| configuration | MACs kept | {string.Join(" | ", ProxySteps.Select(s => s == 0 ? "BN recal only" : $"{s} steps"))} | {finalSteps} steps | time |");
            Console.WriteLine($"| --- | --- | {string.Join(" | ", ProxySteps.Select(_ => "---"))} | --- | --- |");
            var proxies = ProxySteps.Select(_ => new List<double>()).ToList();
            var reference = new List<double>();
            foreach (var (name, kept) in candidates)
            {
                var watch = Stopwatch.StartNew();
                var pruned = space.Prune(kept);
                using (var module = new OnnxModule(pruned))
                {
                    Trainer.RecalibrateBatchNorm(module, searchData.Train, 20, 64, seed: 0);
                    pruned = module.WriteBack();
                }
                var row = new List<double>();
                foreach (int steps in ProxySteps) row.Add(Accuracy(pruned, searchData, steps));
                double final = Accuracy(pruned, searchData, finalSteps);
                for (int k = 0; k < row.Count; k++) proxies[k].Add(row[k]);
                reference.Add(final);
                Console.WriteLine($"| {name} | {space.Costs(kept).Macs / (double)space.BaseMacs:P1} | {string.Join(" | ", row.Select(a => a.ToString("P2")))} | {final:P2} | {watch.Elapsed.TotalSeconds:0} s |");
            }
            Console.WriteLine($"\n| proxy | Spearman ρ against {finalSteps} steps | reference accuracy of the proxy's best | best reference |");
            Console.WriteLine("| --- | --- | --- | --- |");
            for (int k = 0; k < ProxySteps.Length; k++)
            {
                int pick = proxies[k].IndexOf(proxies[k].Max());
                double? rho = RankCorrelation.Spearman(proxies[k], reference);
                Console.WriteLine($"| {(ProxySteps[k] == 0 ? "BN recal only" : $"{ProxySteps[k]} steps")} | {(rho is { } r ? r.ToString("0.00") : "—")} | {reference[pick]:P2} | {reference.Max():P2} |");
            }
            Console.WriteLine();
        }
    }

    static double Accuracy(ModelProto recalibrated, SearchData data, int steps)
    {
        using var module = new OnnxModule(recalibrated);
        if (steps > 0)
            Trainer.Train(module, data.Train, null, new TrainingOptions
            {
                Epochs = 1, MaxStepsPerEpoch = steps, BatchSize = 64, LearningRate = 0.01, Schedule = ScheduleKind.Cosine, Seed = 1,
            });
        return Trainer.Evaluate(module, data.Validation).Accuracy;
    }

    /// <summary>The same fraction everywhere, the largest whose MACs fit the budget.</summary>
    public static int[] UniformAt(SearchSpace space, double budget)
    {
        double lo = 0, hi = 1;
        for (int i = 0; i < 40; i++)
        {
            double mid = (lo + hi) / 2;
            if (space.Costs(space.Uniform(mid)).Macs <= budget * space.BaseMacs) lo = mid; else hi = mid;
        }
        return space.Uniform(lo);
    }

    /// <summary>A random allocation: per-dimension offsets around a level bisected to a MAC target drawn in [0.8, 1] × budget.</summary>
    static int[] RandomNear(SearchSpace space, double budget, Random random)
    {
        var offsets = Enumerable.Range(0, space.Count).Select(_ => 0.7 * (random.NextDouble() - 0.5)).ToArray();
        double target = budget * (0.8 + 0.2 * random.NextDouble()) * space.BaseMacs;
        int[] At(double level) => space.Decode(offsets.Select(o => Math.Clamp(level + o, 0, 1)).ToArray());
        double lo = -0.5, hi = 1.5;
        for (int i = 0; i < 40; i++)
        {
            double mid = (lo + hi) / 2;
            if (space.Costs(At(mid)).Macs <= target) lo = mid; else hi = mid;
        }
        return At(lo);
    }
}
