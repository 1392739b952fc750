using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>training-loop [MODEL.onnx]</c>: the fine-tuning loop as a search runs it (<see cref="Trainer.Train"/>, real images
/// from the embedded sample, batch 64, SGD), on the model and on L1-pruned versions of it (what candidates look like):
/// (1) images/s with oneDNN on NCHW against channels-last tensors, interleaved in rounds; (2) where a step's time goes,
/// with and without distillation; (3) two trials at once on one thread each against one after the other on two.
/// </summary>
static class TrainingLoopBenchmark
{
    const int Steps = 40, Batch = 64, Rounds = 3, FreshShapes = 10, ScreeningSteps = 20;

    public static void Run(string modelPath)
    {
        var baseModel = OnnxModel.Load(modelPath);
        var data = DatasetCatalog.LoadEmbeddedSample().Train;
        var kernels = TorchRuntime.UseKernelsFor(baseModel, Environment.ProcessorCount);
        Console.WriteLine($"{modelPath}; {data.Count} training images of the embedded sample; batch {Batch}; {Steps} steps per run; " +
                          $"{Environment.ProcessorCount} threads unless said; kernels chosen here: {kernels}\n");
        var groups = ChannelGroups.Analyze(baseModel);
        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1));
        var models = new[] { 0.0, 0.5, 0.75 }.Select(a => (Label: a == 0 ? "unpruned" : $"{a:P0} of channels pruned", Model: a == 0 ? baseModel : StructuredPruner.Prune(selection.Uniform(a)))).ToList();

        Console.WriteLine("Layouts (oneDNN on), median images/s over interleaved rounds:\n");
        Console.WriteLine("| model | MACs | NCHW (images/s) | channels-last (images/s) | channels-last / NCHW |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (label, model) in models)
        {
            var rates = new[] { new List<double>(), new List<double>() };
            for (int round = -1; round < Rounds; round++)
                for (int layout = 0; layout < 2; layout++)
                {
                    double rate = Train(model, data, channelsLast: layout == 1, distil: null, threads: Environment.ProcessorCount).Rate;
                    if (round >= 0) rates[layout].Add(rate);
                }
            double nchw = Median(rates[0]), last = Median(rates[1]);
            Console.WriteLine($"| {label} | {ModelCost.Analyze(model).Macs / 1e6:0.00} M | {nchw:0} | {last:0} | {last / nchw:0.00} |");
        }

        // A search trains each candidate once, with widths no earlier candidate had: oneDNN creates (JIT-compiles) its
        // kernels for every new shape, which short screening runs do not amortise.
        Console.WriteLine($"\nNew shapes every run, as in a search: {FreshShapes} candidates pruned 30–70 % (L1, uniform), {ScreeningSteps} steps each, total seconds:\n");
        Console.WriteLine("| layout | seconds | images/s |");
        Console.WriteLine("| --- | --- | --- |");
        var fresh = Enumerable.Range(0, 3 * FreshShapes).Select(i => StructuredPruner.Prune(selection.Uniform(0.3 + 0.4 * i / (3 * FreshShapes)))).ToList();
        for (int layout = 0; layout < 3; layout++)
        {
            var watch = Stopwatch.StartNew();
            // Every third candidate, so that no layout sees a shape another compiled.
            foreach (var model in fresh.Where((_, i) => i % 3 == layout))
            {
                using var module = new OnnxModule(model, false);
                Trainer.Train(module, data, null, new TrainingOptions
                {
                    Epochs = 1, MaxStepsPerEpoch = ScreeningSteps, BatchSize = Batch, LearningRate = 0.01, ChannelsLast = layout == 2 ? null : layout == 1,
                });
            }
            double seconds = watch.Elapsed.TotalSeconds;
            Console.WriteLine($"| {(layout == 2 ? "as chosen per model" : layout == 1 ? "channels-last" : "NCHW")} | {seconds:0.0} | {FreshShapes * ScreeningSteps * Batch / seconds:0} |");
        }

        bool channelsLast = kernels.Mode == KernelMode.ChannelsLast;
        Console.WriteLine($"\nWhere a step's time goes ({(channelsLast ? "channels-last" : "NCHW")}), share of the summed step time:\n");
        Console.WriteLine("| model | distillation | images/s | data | forward | teacher | backward | optimiser | bookkeeping |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (label, model) in models)
        {
            // Distilled twice with one Distillation: the second training reads the teacher's remembered outputs, as every
            // candidate after the first does in a search.
            var shared = new Distillation(baseModel);
            foreach (var (name, distillation) in new[] { ("no", (Distillation?)null), ("yes", shared), ("yes, outputs remembered", shared) })
            {
                var (rate, times) = Train(model, data, channelsLast, distillation, Environment.ProcessorCount);
                string Share(double s) => $"{100 * s / times.Total:0.0} %";
                Console.WriteLine($"| {label} | {name} | {rate:0} | {Share(times.Data)} | {Share(times.Forward)} | {Share(times.Teacher)} | " +
                                  $"{Share(times.Backward)} | {Share(times.Optimizer)} | {Share(times.Bookkeeping)} |");
            }
        }

        // The teacher's forward pass needs no autograd at all: inference mode against no_grad, interleaved.
        using (var teacher = new OnnxModule(baseModel, channelsLast))
        {
            teacher.eval();
            using var images = TorchSharp.torch.rand(Batch, 1, 28, 28);
            var times = new[] { new List<double>(), new List<double>() };
            for (int round = -3; round < 30; round++)
                for (int mode = 0; mode < 2; mode++)
                {
                    var watch = Stopwatch.StartNew();
                    using (mode == 0 ? TorchSharp.torch.no_grad() : TorchSharp.torch.inference_mode())
                        teacher.forward(images).Dispose();
                    if (round >= 0) times[mode].Add(watch.Elapsed.TotalMilliseconds);
                }
            Console.WriteLine($"\nTeacher forward pass (unpruned model, batch {Batch}), median over 30 interleaved rounds: no_grad {Median(times[0]):0.00} ms, " +
                              $"inference_mode {Median(times[1]):0.00} ms\n");
        }

        Console.WriteLine("\nTwo trials: one after the other on all threads, against both at once on one thread each (images/s of both together):\n");
        Console.WriteLine("| model | 1 × 2 threads | 2 × 1 thread | ratio |");
        Console.WriteLine("| --- | --- | --- | --- |");
        foreach (var (label, model) in models)
        {
            var sequential = new List<double>();
            var parallel = new List<double>();
            for (int round = 0; round < Rounds; round++)
            {
                var watch = Stopwatch.StartNew();
                for (int t = 0; t < 2; t++) Train(model, data, channelsLast, null, Environment.ProcessorCount);
                sequential.Add(2.0 * Steps * Batch / watch.Elapsed.TotalSeconds);
                watch.Restart();
                Task.WaitAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => Train(model, data, channelsLast, null, 1))).ToArray());
                parallel.Add(2.0 * Steps * Batch / watch.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"| {label} | {Median(sequential):0} | {Median(parallel):0} | {Median(parallel) / Median(sequential):0.00} |");
        }
    }

    static (double Rate, StepTimes Times) Train(ModelProto model, Dataset data, bool channelsLast, Distillation? distil, int threads)
    {
        using var module = new OnnxModule(model, channelsLast);
        var result = Trainer.Train(module, data, null, new TrainingOptions
        {
            Epochs = 1, MaxStepsPerEpoch = Steps, BatchSize = Batch, LearningRate = 0.01, Seed = 0, Threads = threads, Distillation = distil, ChannelsLast = channelsLast,
        });
        return (Steps * Batch / result.Steps.Total, result.Steps);
    }

    static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
