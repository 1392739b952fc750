using System.Diagnostics;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;
using static TorchSharp.torch;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// Training throughput of pruned (unaligned) candidates under each convolution kernel, under the per-signature choice and
/// under the whole-model choice of before (one mode per process, channels-last only for aligned models); then the same
/// with a faulty oneDNN NCHW kernel injected (what a machine with wrong NCHW kernels sees); and what verifying every
/// signature of a study's candidates costs, from an empty cache.
/// </summary>
static class KernelBenchmark
{
    const int Batch = 64, Rounds = 3, StepsPerRound = 4;

    public static void Run(bool costOnly = false)
    {
        int threads = Environment.ProcessorCount;
        set_num_threads(threads);
        var decision = TorchRuntime.UseKernelsFor(null, threads);
        Console.WriteLine($"kernels: {decision}\n{threads} threads; batch {Batch} of 1×28×28; {Rounds} interleaved rounds × {StepsPerRound} steps after 2 warm-up steps\n");
        if (!TorchRuntime.MkldnnEnabled)
        {
            Console.WriteLine("oneDNN is off in this process: every convolution runs on ATen, nothing to compare.");
            return;
        }
        string cache = Path.Combine(Directory.CreateTempSubdirectory("kernel-bench-").FullName, "convolutions.json");
        ConvKernels.CachePath = cache;
        var candidates = Candidates();

        if (!costOnly) Throughput(candidates, cache);
        Cost(candidates, cache);
    }

    static void Throughput(List<(string Network, string Candidate, ModelProto Model)> candidates, string cache)
    {
        Console.WriteLine("## Throughput (images/s) on pruned candidates\n");
        Table(candidates, fault: null);
        Console.WriteLine("\n## The same with oneDNN NCHW made wrong (injected: outputs from the wrong images)\n");
        KernelFault.Injected = KernelFault.Parse("native");
        ConvKernels.CachePath = cache + ".fault";
        Table(candidates, fault: "native");
        KernelFault.Injected = null;
    }

    static void Cost(List<(string Network, string Candidate, ModelProto Model)> candidates, string cache)
    {
        Console.WriteLine("\n## Verification cost from an empty cache\n");
        Console.WriteLine("| network | candidates | signatures checked | seconds | ms per signature |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var group in candidates.GroupBy(c => c.Network))
        {
            ConvKernels.CachePath = cache + "." + group.Key.Replace(' ', '-');
            var (count0, time0) = ConvKernels.CheckCost;
            foreach (var (_, _, model) in group)
            {
                using var module = new OnnxModule(model);
                module.ChannelsLast = TorchRuntime.ChannelsLastFor(model);
                Steps(module, 1);
            }
            var (count1, time1) = ConvKernels.CheckCost;
            Console.WriteLine($"| {group.Key} | {group.Count()} | {count1 - count0} | {(time1 - time0).TotalSeconds:0.00} | {(time1 - time0).TotalMilliseconds / Math.Max(1, count1 - count0):0.0} |");
        }
    }

    /// <summary>Each network pruned three ways (uniform 30 %, 50 %, and a random per-layer allocation): channel counts
    /// no block divides, as a search's candidates have.</summary>
    static List<(string Network, string Candidate, ModelProto Model)> Candidates()
    {
        var result = new List<(string, string, ModelProto)>();
        foreach (var (name, model) in new[] { ("SimpleCnn", Architectures.SimpleCnn(1, 28, 10, seed: 1)), ("ResNet-20", Architectures.CifarResNet(20, 1, 28, 10, seed: 1)),
                                              ("MobileNetV2 0.5", Architectures.MobileNetV2(1, 28, 10, 0.5, seed: 1)) })
        {
            var selection = new ChannelSelection(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1));
            result.Add((name, "uniform 30 %", StructuredPruner.Prune(selection.Uniform(0.3))));
            result.Add((name, "uniform 50 %", StructuredPruner.Prune(selection.Uniform(0.5))));
            var random = new Random(7);
            var fractions = ChannelGroups.Analyze(model).Prunable.ToDictionary(g => g.Index, _ => 0.3 + 0.6 * random.NextDouble());
            result.Add((name, "random per layer", StructuredPruner.Prune(selection.KeepFractions(fractions))));
        }
        return result;
    }

    static void Table(List<(string Network, string Candidate, ModelProto Model)> candidates, string? fault)
    {
        Console.WriteLine("| network | candidate | ATen | oneDNN NCHW | oneDNN channels-last | whole-model choice | per-signature choice | per-signature / fastest correct | kernels chosen |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (network, candidate, model) in candidates)
        {
            bool aligned = TorchRuntime.ChannelsLastFor(model);
            // The whole-model choice of before: one mode for the process, channels-last only where every layer is aligned.
            var wholeModel = TorchRuntime.OneDnnMode == KernelMode.ChannelsLast && aligned ? ConvKernel.OneDnnChannelsLast : ConvKernel.OneDnnNchw;
            var arms = new (string Name, ConvKernelPlan Plan, bool ChannelsLast)[]
            {
                ("aten", new ConvKernelPlan { ReferenceOnly = true }, false),
                ("nchw", new ConvKernelPlan { Forced = ConvKernel.OneDnnNchw }, false),
                ("cl", new ConvKernelPlan { Forced = ConvKernel.OneDnnChannelsLast }, true),
                ("whole", new ConvKernelPlan { Forced = wholeModel }, wholeModel == ConvKernel.OneDnnChannelsLast),
                ("per-signature", new ConvKernelPlan(), aligned),
            };
            var modules = arms.Select(a => new OnnxModule(model) { Kernels = a.Plan, ChannelsLast = a.ChannelsLast }).ToArray();
            // ATen here is float64 on the reference path (oneDNN stays on in the process): the guard's and a wrong
            // signature's kernel. Float32 ATen (oneDNN off everywhere) is timed on its own below.
            var seconds = new double[arms.Length];
            foreach (var m in modules) Steps(m, 2);
            for (int round = 0; round < Rounds; round++)
                for (int a = 0; a < arms.Length; a++) seconds[a] += Steps(modules[a], StepsPerRound);
            TorchRuntime.MkldnnEnabled = false;
            using var off = new OnnxModule(model) { Kernels = new ConvKernelPlan { Forced = ConvKernel.Aten } };
            Steps(off, 2);
            double offSeconds = 0;
            for (int round = 0; round < Rounds; round++) offSeconds += Steps(off, StepsPerRound);
            TorchRuntime.MkldnnEnabled = true;
            double images = Rounds * StepsPerRound * Batch;
            double Rate(double s) => images / s;
            // Correct: ATen always; a forced oneDNN kernel where no fault is injected into it.
            var correct = new List<double> { Rate(offSeconds) };
            if (fault != "native") correct.Add(Rate(seconds[1]));
            if (fault != "channels-last") correct.Add(Rate(seconds[2]));
            string chosen = modules[^1].Kernels.Describe();
            string Mark(int a, bool wrong) => $"{Rate(seconds[a]):0}{(wrong ? " (wrong)" : "")}";
            Console.WriteLine($"| {network} | {candidate} | {Rate(offSeconds):0} (f32; f64 {Rate(seconds[0]):0}) | {Mark(1, fault == "native")} | {Mark(2, fault == "channels-last")} | " +
                              $"{Mark(3, fault == "native" && wholeModel == ConvKernel.OneDnnNchw)} | {Rate(seconds[4]):0} | {Rate(seconds[4]) / correct.Max():0.00} | {chosen} |");
            foreach (var m in modules) m.Dispose();
        }
    }

    /// <summary>
    /// The fault's cause, where a machine has it (issue 27): for the shapes seen wrong on a Zen 5 VM, each oneDNN layout's
    /// output, input gradient and weight gradient against float64 ATen, on 1 and 2 threads, at the batch seen and at half
    /// of it, twice on the same inputs (a race or uninitialised scratch memory differs between runs; a wrong kernel is
    /// wrong alike), and once after other allocations (an alignment fault moves with them). Run it under ONEDNN_VERBOSE=1
    /// to see which implementation (jit:avx512_core, brgconv, gemm…) computed each pass.
    /// </summary>
    public static void Diagnose()
    {
        TorchRuntime.UseKernelsFor(null, Environment.ProcessorCount);
        TorchRuntime.MkldnnEnabled = true;
        Console.WriteLine("| n | c | o | threads | layout | output error | input-gradient error | weight-gradient error | repeat bit-equal | after other allocations |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |");
        foreach (var (n0, c, o) in new[] { (64, 4, 3), (50, 8, 8), (128, 20, 20), (128, 23, 45) })
            foreach (int n in new[] { n0, n0 / 2 })
                foreach (int threads in new[] { 1, 2 })
                    foreach (var kernel in new[] { ConvKernel.OneDnnNchw, ConvKernel.OneDnnChannelsLast })
                    {
                        set_num_threads(threads);
                        manual_seed(n * 1000 + c * 10 + o);
                        using var scope = NewDisposeScope();
                        var x = randn(n, c, 28, 28);
                        var w = randn(o, c, 3, 3) / Math.Sqrt(9 * c);
                        var r = randn(n, o, 28, 28);
                        var reference = Pass(ConvKernel.Aten, x.to(ScalarType.Float64), w.to(ScalarType.Float64), r.to(ScalarType.Float64));
                        var first = Pass(kernel, x, w, r);
                        var second = Pass(kernel, x, w, r);
                        var padding = Enumerable.Range(0, 7).Select(i => empty(1 + 977 * i)).ToList(); // shifts where the next tensors land
                        var moved = Pass(kernel, x.clone(), w.clone(), r.clone());
                        double Err(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b).abs().max().item<double>() / Math.Max(1e-12, b.abs().max().item<double>());
                        bool equal = first.Zip(second).All(p => p.First.allclose(p.Second, 0, 0));
                        Console.WriteLine($"| {n} | {c} | {o} | {threads} | {ConvKernelPlan.Name(kernel)} | {Err(first[0], reference[0]):0.0e+0} | {Err(first[1], reference[1]):0.0e+0} | " +
                                          $"{Err(first[2], reference[2]):0.0e+0} | {(equal ? "yes" : "no")} | {moved.Zip(reference).Max(p => Err(p.First, p.Second)):0.0e+0} |");
                    }
    }

    /// <summary>Output, input gradient and weight gradient of a 3×3, stride-1, pad-1 convolution on <paramref name="kernel"/>
    /// (ATen in the inputs' own precision), for the loss Σ y·r.</summary>
    static Tensor[] Pass(ConvKernel kernel, Tensor x, Tensor w, Tensor r)
    {
        var xi = x.detach().clone().requires_grad_(true);
        var wi = w.detach().clone().requires_grad_(true);
        var signature = ConvKernels.Signature(xi, wi, false, [1, 1], [1, 1], [1, 1], 1);
        var y = kernel == ConvKernel.Aten ? nn.functional.conv2d(xi, wi, null, [1, 1], [1, 1], [1, 1], 1)
                                          : ConvKernels.Run(kernel, signature, xi, wi, null, [1, 1], [1, 1], [1, 1], 1);
        (y * r).sum().backward();
        return [y.detach().contiguous(), xi.grad!.contiguous(), wi.grad!.contiguous()];
    }

    static double Steps(OnnxModule module, int steps)
    {
        module.train();
        var parameters = module.parameters().ToList();
        using var optimizer = ParameterUpdate.For(parameters, new TrainingOptions { LearningRate = 0.01, Nesterov = false, WeightDecay = 0 });
        manual_seed(1);
        using var x = randn(Batch, 1, 28, 28);
        using var y = randint(0, 10, [Batch]);
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            nn.functional.cross_entropy(module.forward(x), y).backward();
            optimizer.Step();
        }
        return watch.Elapsed.TotalSeconds;
    }
}
