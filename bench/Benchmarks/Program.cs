using System.Diagnostics;
using ParetoPrune.Benchmarks;

// paretoprune-bench <name>: runs one benchmark and prints a Markdown table to paste into bench/RESULTS.md.
var benchmarks = new Dictionary<string, Action>
{
    ["pruning"] = PruningBenchmark.Run,
    ["inspect"] = InspectBenchmark.Run,
    ["pareto"] = ParetoBenchmark.Run,
    ["training"] = TrainingBenchmark.Run,
    ["kernels"] = () => { if (args.Length > 1 && args[1] == "diagnose") KernelBenchmark.Diagnose(); else KernelBenchmark.Run(args.Length > 1 && args[1] == "cost"); },
    ["training-loop"] = () => TrainingLoopBenchmark.Run(args.Length > 1 ? args[1] : "models/simplecnn-fashion-mnist.onnx"),
    ["scoring"] = ScoringBenchmark.Run,
    ["latency"] = LatencyBenchmark.Run,
    ["finetune"] = () => FinetuneBenchmark.Run(args.Length > 1 ? args[1] : "models/simplecnn-fashion-mnist.onnx"),
    ["search"] = () => SearchBenchmark.Run(args.Length > 1 ? args[1] : "models/simplecnn-fashion-mnist.onnx",
                                           args.Length > 2 ? int.Parse(args[2]) : 30, args.Length > 3 ? int.Parse(args[3]) : 3,
                                           args.Length > 4 ? args[4].Split(',') : ["bo", "random", "uniform"]),
    ["search-overhead"] = SearchBenchmark.Overhead,
    ["store"] = () => StoreBenchmark.Run(args.Length > 1 ? args[1] : null),
    ["pi-profile"] = () => PiProfileFit.Run(args.Length > 1 ? args[1] : "/tmp/pi-ref", args.Length > 2 ? args[2] : "bench/pi4b-profile/measurements.csv"),
    ["training-pytorch"] = () => PyTorchBenchmark.Run(args.Length > 1 ? int.Parse(args[1]) : 5),
    ["front"] = () => FrontBenchmark.Run(args.Length > 1 ? args[1] : "models/resnet20-fashion-mnist.onnx", args.Length > 2 ? int.Parse(args[2]) : 3,
                                         args.Length > 3 ? int.Parse(args[3]) : 16, args.Length > 4 ? int.Parse(args[4]) : 300),
    ["allocation"] = () => AllocationBenchmark.Run(args.Length > 1 ? args[1] : "bench/allocation/results.jsonl",
                                                   args.Length > 2 ? args[2].Split(',') : ["models/resnet20-fashion-mnist.onnx", "models/mobilenetv2-fashion-mnist.onnx"],
                                                   args.Length > 3 ? args[3].Split(',') : ["params", "macs", "energy"], args.Length > 4 ? int.Parse(args[4]) : 3,
                                                   args.Length > 5 ? int.Parse(args[5]) : 16, args.Length > 6 ? int.Parse(args[6]) : 300,
                                                   args.Length > 7 ? double.Parse(args[7], System.Globalization.CultureInfo.InvariantCulture) : 0.25,
                                                   args.Length > 8 ? args[8].Split(',') : AllocationBenchmark.DefaultArms),
    ["fidelity"] = () => FidelityBenchmark.Run(args.Length > 1 ? args[1] : "models/resnet20-fashion-mnist.onnx",
                                               args.Length > 2 ? int.Parse(args[2]) : 10, args.Length > 3 ? int.Parse(args[3]) : 300),
};
if (args.Length is < 1 or > 9 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: paretoprune-bench {string.Join("|", benchmarks.Keys)} [MODEL.onnx for finetune, search and fidelity] [TRIALS SEEDS [SAMPLERS,…] for search] [CONFIGS FINAL_STEPS for fidelity] [SEEDS TRIALS FINAL_STEPS for front] [ROUNDS for training-pytorch] [POSTGRESQL_URL for store] [MODELS_DIR [CSV] for pi-profile] [RESULTS [MODELS,…] [BOUNDS,…] [SEEDS] [TRIALS] [FINAL_STEPS] [BUDGET] [ARMS,…] for allocation]");
    return 2;
}
Console.WriteLine($"# {args[0]} — {Environment.ProcessorCount} cores, .NET {Environment.Version}, {DateTime.UtcNow:yyyy-MM-dd}");
run();
return 0;

namespace ParetoPrune.Benchmarks
{
    /// <summary>Median and spread of repeated timings, after warm-up runs.</summary>
    static class Timing
    {
        public static (double Median, double Min, double Max) Measure(Action action, int warmup = 2, int runs = 9)
        {
            for (int i = 0; i < warmup; i++) action();
            var times = new double[runs];
            for (int i = 0; i < runs; i++)
            {
                var watch = Stopwatch.StartNew();
                action();
                times[i] = watch.Elapsed.TotalMilliseconds;
            }
            Array.Sort(times);
            return (times[runs / 2], times[0], times[^1]);
        }

        public static string Format((double Median, double Min, double Max) t) => $"{t.Median:0.0} ms (min {t.Min:0.0}, max {t.Max:0.0})";
    }
}
