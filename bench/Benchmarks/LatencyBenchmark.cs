using ParetoPrune.Devices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Benchmarks;

/// <summary>Host latency of the builders' models through <see cref="HostDevice"/> with the default measurement plan.</summary>
static class LatencyBenchmark
{
    public static void Run()
    {
        var plan = new MeasurementPlan();
        Console.WriteLine($"HostDevice, default plan: {plan.WarmupRuns} warm-up runs, at least {plan.MinimumRuns} timed runs, stop when the 95 % CI " +
                          $"of the median is within {plan.TargetRelativeCiWidth:P0} of it or after {plan.TimeBudget.TotalSeconds:0} s; batch 1; ONNX Runtime's default threads\n");
        Console.WriteLine("| model | input | MACs | median | 95 % CI of the median | CI width | p10 / p90 | runs | stopped by |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (name, model) in new (string, ModelProto)[]
                 {
                     ("SimpleCnn", Architectures.SimpleCnn(1, 28, 10)),
                     ("ResNet-20", Architectures.CifarResNet(20, 1, 28, 10)),
                     ("ResNet-56", Architectures.CifarResNet(56, 3, 32, 10)),
                     ("VGG-16", Architectures.Vgg(16, 3, 32, 10)),
                     ("MobileNetV2 1.0", Architectures.MobileNetV2(3, 224, 1000)),
                     ("ResNet-18", Architectures.ImageNetResNet(18, 3, 224, 1000)),
                 })
        {
            var cost = ModelCost.Analyze(model);
            var shape = cost.InputShape.Skip(1).Select(d => (int)d).ToArray();
            var m = new HostDevice().MeasureAsync(OnnxModel.ToBytes(model), shape, plan).GetAwaiter().GetResult();
            var l = m.Latency;
            string stop = l.RelativeCiWidth <= plan.TargetRelativeCiWidth ? "CI target" : "time budget";
            Console.WriteLine($"| {name} | {string.Join("×", shape)} | {cost.Macs / 1e6:0.0} M | {l.MedianMs:0.000} ms | {l.MedianCiLowerMs:0.000}–{l.MedianCiUpperMs:0.000} ms | " +
                              $"{l.RelativeCiWidth:P1} | {l.P10Ms:0.000} / {l.P90Ms:0.000} ms | {l.Runs} | {stop} |");
        }
    }
}
