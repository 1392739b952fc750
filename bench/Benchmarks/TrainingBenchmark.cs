using System.Diagnostics;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// Training throughput (images/s, batch 128, 28×28×1, 10 classes, SGD) of the ONNX graph module, and its ratio to a
/// hand-written TorchSharp module of the same network, measured interleaved in one run (target ≤ 1.10).
/// </summary>
static class TrainingBenchmark
{
    public static void Run()
    {
        int threads = Environment.ProcessorCount;
        var kernels = TorchRuntime.UseKernelsFor(null, threads); // the kernels training would use here
        torch.set_num_threads(threads);
        Console.WriteLine($"kernels: {kernels}; {threads} threads; batch 128 of 1×28×28; 3 interleaved rounds × 5 steps after 3 warm-up steps\n");
        Console.WriteLine("| network | MACs / image | graph module (images/s) | hand-written module (images/s) | ratio graph/hand (time) |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        Report("SimpleCnn", Architectures.SimpleCnn(1, 28, 10, seed: 1), () => new HandSimpleCnn());
        Report("ResNet-20", Architectures.CifarResNet(20, 1, 28, 10, seed: 1), () => new HandResNet20());
        Report("VGG-11", Architectures.Vgg(11, 1, 28, 10, seed: 1), null);
        Report("MobileNetV2 0.5", Architectures.MobileNetV2(1, 28, 10, 0.5, seed: 1), null);
    }

    static void Report(string name, ModelProto model, Func<nn.Module<Tensor, Tensor>>? hand)
    {
        using var graph = new OnnxModule(model);
        using var handModule = hand?.Invoke();
        var x = randn(128, 1, 28, 28);
        var y = randint(0, 10, [128]);
        double graphTime = 0, handTime = 0;
        Steps(graph, x, y, 3);
        if (handModule is not null) Steps(handModule, x, y, 3);
        for (int round = 0; round < 3; round++)
        {
            graphTime += Steps(graph, x, y, 5);
            if (handModule is not null) handTime += Steps(handModule, x, y, 5);
        }
        double images = 3 * 5 * 128;
        long macs = ParetoPrune.Objectives.Onnx.ModelCost.Analyze(model).Macs;
        Console.WriteLine($"| {name} | {macs / 1e6:0.0} M | {images / graphTime:0} | {(handModule is null ? "—" : (images / handTime).ToString("0"))} | " +
                          $"{(handModule is null ? "—" : (graphTime / handTime).ToString("0.000"))} |");
    }

    internal static double Steps(nn.Module<Tensor, Tensor> module, Tensor x, Tensor y, int steps)
    {
        module.train();
        using var optimizer = ParameterUpdate.For(module.parameters().ToList(), new TrainingOptions { LearningRate = 0.01, Nesterov = false, WeightDecay = 0 });
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            F.cross_entropy(module.forward(x), y).backward();
            optimizer.Step();
        }
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>Architectures.SimpleCnn(1, 28, 10) written by hand: conv-BN-ReLU ×4 (32, 32, 64, 64), pools after 2 and 4.</summary>
    sealed class HandSimpleCnn : nn.Module<Tensor, Tensor>
    {
        readonly Sequential features;
        readonly Linear classifier = nn.Linear(64 * 7 * 7, 10);

        public HandSimpleCnn() : base("HandSimpleCnn")
        {
            features = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding: 1, bias: false), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 32, 3, padding: 1, bias: false), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding: 1, bias: false), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, padding: 1, bias: false), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => classifier.forward(features.forward(x).flatten(1));
    }

    /// <summary>Architectures.CifarResNet(20, 1, 28, 10) written by hand, with option-A shortcuts.</summary>
    sealed class HandResNet20 : nn.Module<Tensor, Tensor>
    {
        readonly Sequential stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding: 1, bias: false), nn.BatchNorm2d(16), nn.ReLU());
        readonly ModuleList<Block> blocks = new();
        readonly Linear fc = nn.Linear(64, 10);

        public HandResNet20() : base("HandResNet20")
        {
            int channels = 16;
            foreach (int width in new[] { 16, 32, 64 })
                for (int b = 0; b < 3; b++)
                {
                    blocks.Add(new Block(channels, width, width != channels ? 2 : 1));
                    channels = width;
                }
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            x = stem.forward(x);
            foreach (var block in blocks) x = block.forward(x);
            return fc.forward(x.mean([2, 3]));
        }

        internal sealed class Block : nn.Module<Tensor, Tensor>
        {
            readonly Conv2d conv1, conv2;
            readonly BatchNorm2d bn1, bn2;
            readonly int stride, extra;

            public Block(int input, int output, int stride) : base("Block")
            {
                conv1 = nn.Conv2d(input, output, 3, stride: stride, padding: 1, bias: false);
                bn1 = nn.BatchNorm2d(output);
                conv2 = nn.Conv2d(output, output, 3, padding: 1, bias: false);
                bn2 = nn.BatchNorm2d(output);
                this.stride = stride;
                extra = output - input;
                RegisterComponents();
            }

            public override Tensor forward(Tensor x)
            {
                var y = bn2.forward(conv2.forward(F.relu(bn1.forward(conv1.forward(x)))));
                var shortcut = stride == 1 && extra == 0 ? x
                    : F.pad(F.max_pool2d(x, [1, 1], [stride, stride]), [0, 0, 0, 0, extra / 2, extra - extra / 2]);
                return F.relu(y + shortcut);
            }
        }
    }
}
