using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Benchmarks;

/// <summary>Structured pruning speed: channel analysis, L1 scoring, selection and slicing, for growing models.</summary>
static class PruningBenchmark
{
    public static void Run()
    {
        Console.WriteLine("| model | groups (prunable) | analyse | score + select 50 % | prune (slice) | predict cost | total analyse→pruned |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (name, model) in new (string, ModelProto)[]
                 {
                     ("ResNet-20 (CIFAR)", Architectures.CifarResNet(20, 3, 32, 10)),
                     ("ResNet-56 (CIFAR)", Architectures.CifarResNet(56, 3, 32, 10)),
                     ("ResNet-110 (CIFAR)", Architectures.CifarResNet(110, 3, 32, 10)),
                     ("VGG-16 (CIFAR)", Architectures.Vgg(16, 3, 32, 10)),
                     ("MobileNetV2 1.0 (224)", Architectures.MobileNetV2(3, 224, 1000)),
                 })
        {
            ChannelGroups groups = ChannelGroups.Analyze(model);
            PruningSelection selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5);
            var analyse = Timing.Measure(() => groups = ChannelGroups.Analyze(model));
            var select = Timing.Measure(() => selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5));
            var prune = Timing.Measure(() => StructuredPruner.Prune(selection));
            var predict = Timing.Measure(() => PrunedCost.Predict(selection));
            var total = Timing.Measure(() =>
            {
                var g = ChannelGroups.Analyze(model);
                StructuredPruner.Prune(new ChannelSelection(g, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5));
            }, warmup: 1, runs: 5);
            Console.WriteLine($"| {name} | {groups.Groups.Count} ({groups.Prunable.Count()}) | {Timing.Format(analyse)} | {Timing.Format(select)} | " +
                              $"{Timing.Format(prune)} | {Timing.Format(predict)} | {Timing.Format(total)} |");
        }
    }
}

/// <summary>Shape inference and cost counting on the largest built-in models.</summary>
static class InspectBenchmark
{
    public static void Run()
    {
        Console.WriteLine("| model | nodes | MACs | analyse (shapes + costs) | serialize | parse |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var (name, model) in new (string, ModelProto)[]
                 {
                     ("ResNet-110 (CIFAR)", Architectures.CifarResNet(110, 3, 32, 10)),
                     ("ResNet-34 (224)", Architectures.ImageNetResNet(34, 3, 224, 1000)),
                     ("MobileNetV2 1.0 (224)", Architectures.MobileNetV2(3, 224, 1000)),
                 })
        {
            var bytes = OnnxModel.ToBytes(model);
            var analyse = Timing.Measure(() => ModelCost.Analyze(model));
            var serialize = Timing.Measure(() => OnnxModel.ToBytes(model));
            var parse = Timing.Measure(() => OnnxModel.Parse(bytes));
            Console.WriteLine($"| {name} | {model.Graph.Node.Count} | {ModelCost.Analyze(model).Macs / 1e6:0.0} M | {Timing.Format(analyse)} | " +
                              $"{Timing.Format(serialize)} | {Timing.Format(parse)} |");
        }
    }
}
